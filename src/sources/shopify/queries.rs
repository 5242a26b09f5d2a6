//! The GraphQL documents the Shopify source sends, built from one field list per resource so
//! the paged and the bulk paths land the same record shape.
//!
//! Paged queries take `$first`, `$after` and `$query` (the search string selecting a window)
//! and read `nodes` with `pageInfo`. Bulk queries name the same fields without page sizes;
//! Shopify then writes each nested connection's nodes as separate JSONL lines carrying
//! `__parentId`, and [`super::bulk`] folds them back under their parent. Nested connection
//! nodes select `__typename` so that folding knows which connection a line belongs to.
//!
//! Requested cost is kept under the 1000-point single-query cap: an order with 10 line items (with
//! their tax lines and discount allocations), 5 shipping lines, 5 discount applications and a
//! refund with 10 lines and 5 transactions requests 280 points, so a paged order page holds 3
//! orders (842 points); backfills go through bulk operations, which have no cost cap.
//!
//! Bulk operations refuse a connection inside a list field ("Queries that contain a connection
//! field within a list field are not currently supported"), and `Order.refunds` is a list: bulk
//! order queries read refund headers only, and [`ORDER_REFUNDS`] completes each refunded order.

/// `MoneyBag` in shop money, the currency every figure is modeled in.
const SHOP_MONEY: &str = "shopMoney { amount currencyCode }";
/// `MoneyBag` in both currencies, where the presentment amount is worth keeping.
const BOTH_MONEY: &str = "shopMoney { amount currencyCode } presentmentMoney { amount currencyCode }";

/// A customer visit of `customerJourneySummary`.
const VISIT: &str = "landingPage referrerUrl source sourceType utmParameters { source medium campaign content term }";

/// Page sizes of the connections nested in a paged order (bulk reads them whole).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderPageShape {
    pub line_items: u32,
    pub shipping_lines: u32,
    pub discount_applications: u32,
    pub refund_line_items: u32,
    pub transactions: u32,
}

impl OrderPageShape {
    pub const DEFAULT: OrderPageShape = OrderPageShape {
        line_items: 10,
        shipping_lines: 5,
        discount_applications: 5,
        refund_line_items: 10,
        transactions: 5,
    };
}

/// How a nested connection is written: `(first: n) { pageInfo … nodes { … } }` when paged,
/// `{ edges { node { … } } }` in a bulk query.
fn connection(name: &str, first: Option<u32>, fields: &str) -> String {
    match first {
        Some(n) => {
            format!("{name}(first: {n}) {{ pageInfo {{ hasNextPage endCursor }} nodes {{ __typename {fields} }} }}")
        }
        None => format!("{name} {{ edges {{ node {{ __typename {fields} }} }} }}"),
    }
}

/// A line item: prices, discounts allocated to it, and its tax lines (prices may include tax).
const LINE_ITEM_FIELDS: &str = "id name sku quantity currentQuantity isGiftCard product { id } variant { id } \
     originalUnitPriceSet { shopMoney { amount currencyCode } } totalDiscountSet { shopMoney { amount currencyCode } } \
     discountedTotalSet { shopMoney { amount currencyCode } } \
     discountAllocations { allocatedAmountSet { shopMoney { amount currencyCode } } } \
     taxLines { rate priceSet { shopMoney { amount currencyCode } } }";

fn order_fields(shape: Option<OrderPageShape>) -> String {
    let line_items = connection("lineItems", shape.map(|s| s.line_items), LINE_ITEM_FIELDS);
    let discount_applications = connection(
        "discountApplications",
        shape.map(|s| s.discount_applications),
        "allocationMethod targetType targetSelection \
         value { __typename ... on MoneyV2 { amount currencyCode } ... on PricingPercentageValue { percentage } } \
         ... on DiscountCodeApplication { code } ... on AutomaticDiscountApplication { title } \
         ... on ManualDiscountApplication { title } ... on ScriptDiscountApplication { title }",
    );
    let refund_line_items = |first| {
        connection(
            "refundLineItems",
            first,
            &format!("id quantity restockType lineItem {{ id }} subtotalSet {{ {SHOP_MONEY} }}"),
        )
    };
    let transactions = |first| {
        connection("transactions", first, &format!("id kind status gateway processedAt amountSet {{ {SHOP_MONEY} }}"))
    };
    let shipping_lines = connection(
        "shippingLines",
        shape.map(|s| s.shipping_lines),
        &format!("id title code originalPriceSet {{ {SHOP_MONEY} }} discountedPriceSet {{ {SHOP_MONEY} }}"),
    );
    let refund_children = match shape {
        Some(s) => format!("{} {}", refund_line_items(Some(s.refund_line_items)), transactions(Some(s.transactions))),
        None => String::new(),
    };
    format!(
        "id legacyResourceId name createdAt updatedAt processedAt cancelledAt cancelReason test sourceName \
         tags email phone currencyCode presentmentCurrencyCode displayFinancialStatus discountCodes \
         customer {{ id }} \
         subtotalPriceSet {{ {BOTH_MONEY} }} totalDiscountsSet {{ {SHOP_MONEY} }} \
         totalShippingPriceSet {{ {SHOP_MONEY} }} totalTaxSet {{ {SHOP_MONEY} }} \
         totalPriceSet {{ {BOTH_MONEY} }} currentTotalPriceSet {{ {SHOP_MONEY} }} \
         totalRefundedSet {{ {SHOP_MONEY} }} totalRefundedShippingSet {{ {SHOP_MONEY} }} \
         totalTipReceivedSet {{ {SHOP_MONEY} }} taxesIncluded \
         customerJourneySummary {{ ready firstVisit {{ {VISIT} }} lastVisit {{ {VISIT} }} }} \
         {discount_applications} {line_items} {shipping_lines} \
         refunds {{ id createdAt note totalRefundedSet {{ {SHOP_MONEY} }} {refund_children} }}"
    )
}

const CUSTOMER_FIELDS: &str = "id legacyResourceId createdAt updatedAt firstName lastName state tags numberOfOrders \
     amountSpent { amount currencyCode } \
     defaultEmailAddress { emailAddress marketingState marketingOptInLevel marketingUpdatedAt } \
     defaultPhoneNumber { phoneNumber smsMarketingConsent { marketingState marketingOptInLevel consentUpdatedAt consentCollectedFrom } } \
     defaultAddress { countryCodeV2 provinceCode }";

fn product_fields(variants_first: Option<u32>) -> String {
    let variants = connection(
        "variants",
        variants_first,
        "id legacyResourceId title sku price createdAt updatedAt inventoryItem { id }",
    );
    format!("id legacyResourceId title handle productType vendor status tags createdAt updatedAt {variants}")
}

const INVENTORY_ITEM_FIELDS: &str = "id legacyResourceId sku tracked createdAt updatedAt unitCost { amount currencyCode } \
     variant { id product { id } }";

/// A paged top-level connection query over `root` (`orders`, `customers`, ...).
fn paged(op: &str, root: &str, sort_key: Option<&str>, fields: &str) -> String {
    let sort = sort_key.map(|k| format!(", sortKey: {k}")).unwrap_or_default();
    format!(
        "query {op}($first: Int!, $after: String, $query: String) {{ \
         {root}(first: $first, after: $after, query: $query{sort}) {{ \
         pageInfo {{ hasNextPage endCursor }} nodes {{ {fields} }} }} }}"
    )
}

/// The inner query of a bulk operation over `root`, filtered by `search`.
fn bulk(root: &str, search: &str, sort_key: Option<&str>, fields: &str) -> String {
    let sort = sort_key.map(|k| format!(", sortKey: {k}")).unwrap_or_default();
    let search = search.replace('\\', "\\\\").replace('"', "\\\"");
    format!("{{ {root}(query: \"{search}\"{sort}) {{ edges {{ node {{ {fields} }} }} }} }}")
}

pub fn orders_page(shape: OrderPageShape) -> String {
    paged("Orders", "orders", Some("UPDATED_AT"), &order_fields(Some(shape)))
}

pub fn orders_bulk(search: &str) -> String {
    bulk("orders", search, Some("UPDATED_AT"), &order_fields(None))
}

/// Follow-up for an order whose line items did not fit its page (60 lines: 903 points).
pub fn order_line_items() -> String {
    format!(
        "query OrderLineItems($id: ID!, $after: String) {{ order(id: $id) {{ \
         lineItems(first: 60, after: $after) {{ pageInfo {{ hasNextPage endCursor }} nodes {{ __typename \
         {LINE_ITEM_FIELDS} }} }} }} }}"
    )
}

/// A bulk-read order's refunds with their lines and transactions (466 points).
pub const ORDER_REFUNDS: &str = "query OrderRefunds($id: ID!) { order(id: $id) { refunds { id \
     refundLineItems(first: 100) { pageInfo { hasNextPage endCursor } nodes { __typename \
     id quantity restockType lineItem { id } subtotalSet { shopMoney { amount currencyCode } } } } \
     transactions(first: 20) { pageInfo { hasNextPage endCursor } nodes { __typename \
     id kind status gateway processedAt amountSet { shopMoney { amount currencyCode } } } } } } }";

pub fn customers_page() -> String {
    paged("Customers", "customers", Some("UPDATED_AT"), CUSTOMER_FIELDS)
}

pub fn customers_bulk(search: &str) -> String {
    bulk("customers", search, Some("UPDATED_AT"), CUSTOMER_FIELDS)
}

pub fn products_page() -> String {
    paged("Products", "products", Some("UPDATED_AT"), &product_fields(Some(50)))
}

pub fn products_bulk(search: &str) -> String {
    bulk("products", search, Some("UPDATED_AT"), &product_fields(None))
}

pub fn inventory_items_page() -> String {
    paged("InventoryItems", "inventoryItems", None, INVENTORY_ITEM_FIELDS)
}

pub fn inventory_items_bulk(search: &str) -> String {
    bulk("inventoryItems", search, None, INVENTORY_ITEM_FIELDS)
}

/// The shop, and the scopes the token holds (`read_all_orders` decides how far back orders go).
pub const SHOP: &str = "query Shop { shop { id name myshopifyDomain ianaTimezone timezoneOffset currencyCode } \
     currentAppInstallation { accessScopes { handle } } }";

pub const BULK_RUN: &str = "mutation BulkRun($query: String!) { bulkOperationRunQuery(query: $query, groupObjects: false) { \
     bulkOperation { id status } userErrors { code field message } } }";

pub const BULK_POLL: &str = "query BulkPoll($id: ID!) { node(id: $id) { ... on BulkOperation { \
     id status errorCode createdAt completedAt objectCount rootObjectCount fileSize url partialDataUrl } } }";

pub const BULK_CANCEL: &str = "mutation BulkCancel($id: ID!) { bulkOperationCancel(id: $id) { \
     bulkOperation { id status } userErrors { field message } } }";

/// The search string of one `updated_at` window, `[from, to)`.
pub fn updated_window(from: chrono::DateTime<chrono::Utc>, to: Option<chrono::DateTime<chrono::Utc>>) -> String {
    let fmt = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    match to {
        Some(to) => format!("updated_at:>='{}' AND updated_at:<'{}'", fmt(from), fmt(to)),
        None => format!("updated_at:>='{}'", fmt(from)),
    }
}
