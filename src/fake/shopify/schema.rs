//! The fixed schema subset the fake serves: one table per type, field → kind.
//!
//! The executor validates every selection against this table (unknown fields, selections on
//! scalars, fragment conditions) and the cost model walks it, so the table is the single
//! statement of what the fake's Shopify looks like. Fields gated by `since` exist only from
//! that API version on (`defaultPhoneNumber.smsMarketingConsent` arrived in 2026-10); fields
//! Shopify removed long ago (`Order.landingPageUrl`) are simply absent.

use std::collections::HashMap;
use std::sync::OnceLock;

/// What a field returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// A scalar or enum (cost 0); the name is for error messages.
    Scalar(&'static str),
    /// A list of scalars or enums (cost 0).
    ScalarList(&'static str),
    /// One object (cost 1 plus its selection).
    Object(&'static str),
    /// A plain list of objects (`refunds`, `transactions`); sized by `first` when given.
    List(&'static str),
    /// A Relay connection of nodes of the named type (`first`/`after` paging).
    Connection(&'static str),
}

impl Ty {
    /// The type a selection under this field is validated against.
    pub fn target(self) -> Option<String> {
        match self {
            Ty::Scalar(_) | Ty::ScalarList(_) => None,
            Ty::Object(t) | Ty::List(t) => Some(t.to_string()),
            Ty::Connection(t) => Some(format!("{t}Connection")),
        }
    }

    pub fn display(self) -> String {
        match self {
            Ty::Scalar(t) | Ty::Object(t) => t.to_string(),
            Ty::ScalarList(t) | Ty::List(t) => format!("[{t}!]!"),
            Ty::Connection(t) => format!("{t}Connection!"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct FieldDef {
    pub name: &'static str,
    pub ty: Ty,
    /// Accepted argument names.
    pub args: Vec<&'static str>,
    /// The enum type and values `sortKey` accepts (top-level connections only).
    pub sort_keys: Option<(&'static str, &'static [&'static str])>,
    /// First API version serving the field.
    pub since: Option<&'static str>,
}

impl FieldDef {
    pub fn available(&self, version: &str) -> bool {
        self.since.is_none_or(|s| version >= s)
    }
}

#[derive(Debug, Clone)]
pub enum Kind {
    Object,
    Interface(Vec<&'static str>),
    Union(Vec<&'static str>),
}

#[derive(Debug, Clone)]
pub struct TypeDef {
    pub name: &'static str,
    pub kind: Kind,
    pub fields: Vec<FieldDef>,
}

impl TypeDef {
    pub fn field(&self, name: &str) -> Option<&FieldDef> {
        self.fields.iter().find(|f| f.name == name)
    }
}

pub struct Schema {
    types: HashMap<&'static str, TypeDef>,
}

/// The arguments every connection takes.
const PAGING: &[&str] = &["first", "after", "last", "before", "reverse"];

fn s(name: &'static str, ty: &'static str) -> FieldDef {
    FieldDef { name, ty: Ty::Scalar(ty), args: Vec::new(), sort_keys: None, since: None }
}
fn sl(name: &'static str, ty: &'static str) -> FieldDef {
    FieldDef { ty: Ty::ScalarList(ty), ..s(name, "") }
}
fn o(name: &'static str, ty: &'static str) -> FieldDef {
    FieldDef { ty: Ty::Object(ty), ..s(name, "") }
}
/// A plain list without arguments.
fn l(name: &'static str, ty: &'static str) -> FieldDef {
    FieldDef { ty: Ty::List(ty), ..s(name, "") }
}
/// A plain list that takes `first` (`refunds(first:)`, `transactions(first:)`).
fn lf(name: &'static str, ty: &'static str) -> FieldDef {
    l(name, ty).args(&["first"])
}
fn c(name: &'static str, ty: &'static str) -> FieldDef {
    FieldDef { ty: Ty::Connection(ty), args: PAGING.to_vec(), ..s(name, "") }
}
fn money(name: &'static str) -> FieldDef {
    o(name, "MoneyBag")
}

impl FieldDef {
    fn args(mut self, args: &[&'static str]) -> Self {
        self.args.extend_from_slice(args);
        self
    }
    fn sorted(mut self, enum_name: &'static str, keys: &'static [&'static str]) -> Self {
        self.args.extend_from_slice(&["query", "sortKey"]);
        self.sort_keys = Some((enum_name, keys));
        self
    }
    fn since(mut self, version: &'static str) -> Self {
        self.since = Some(version);
        self
    }
}

/// Types implementing `Node` (reachable through `node(id:)` when top-level).
pub const NODE_TYPES: &[&str] = &[
    "Order",
    "Customer",
    "Product",
    "ProductVariant",
    "InventoryItem",
    "BulkOperation",
    "LineItem",
    "Refund",
    "RefundLineItem",
    "OrderTransaction",
    "MailingAddress",
    "CustomerVisit",
    "Shop",
    "AppInstallation",
];

pub const DISCOUNT_APPLICATIONS: &[&str] = &[
    "DiscountCodeApplication",
    "AutomaticDiscountApplication",
    "ManualDiscountApplication",
    "ScriptDiscountApplication",
];

pub const ORDER_SORT: &[&str] = &["CREATED_AT", "ID", "PROCESSED_AT", "UPDATED_AT"];
pub const CUSTOMER_SORT: &[&str] = &["CREATED_AT", "ID", "UPDATED_AT"];
pub const PRODUCT_SORT: &[&str] = &["CREATED_AT", "ID", "TITLE", "UPDATED_AT"];
pub const VARIANT_SORT: &[&str] = &["ID", "SKU", "TITLE"];

impl Schema {
    pub fn get() -> &'static Schema {
        static SCHEMA: OnceLock<Schema> = OnceLock::new();
        SCHEMA.get_or_init(Schema::build)
    }

    pub fn ty(&self, name: &str) -> Option<&TypeDef> {
        self.types.get(name)
    }

    /// The concrete types a value of `name` can have.
    pub fn possible(&self, name: &str) -> Vec<&'static str> {
        match self.types.get(name) {
            Some(TypeDef { kind: Kind::Interface(p) | Kind::Union(p), .. }) => p.clone(),
            Some(t) => vec![t.name],
            None => Vec::new(),
        }
    }

    /// Whether a fragment on `cond` applies to an object of concrete type `concrete`.
    pub fn applies(&self, cond: &str, concrete: &str) -> bool {
        cond == concrete || self.possible(cond).contains(&concrete)
    }

    fn build() -> Schema {
        let mut types: Vec<TypeDef> = Vec::new();
        let mut obj = |name: &'static str, fields: Vec<FieldDef>| {
            types.push(TypeDef { name, kind: Kind::Object, fields });
        };
        obj(
            "QueryRoot",
            vec![
                o("shop", "Shop"),
                o("currentAppInstallation", "AppInstallation"),
                c("orders", "Order").sorted("OrderSortKeys", ORDER_SORT),
                o("order", "Order").args(&["id"]),
                c("customers", "Customer").sorted("CustomerSortKeys", CUSTOMER_SORT),
                o("customer", "Customer").args(&["id"]),
                c("products", "Product").sorted("ProductSortKeys", PRODUCT_SORT),
                o("product", "Product").args(&["id"]),
                c("productVariants", "ProductVariant").sorted("ProductVariantSortKeys", VARIANT_SORT),
                o("productVariant", "ProductVariant").args(&["id"]),
                c("inventoryItems", "InventoryItem").args(&["query"]),
                o("inventoryItem", "InventoryItem").args(&["id"]),
                o("node", "Node").args(&["id"]),
                o("currentBulkOperation", "BulkOperation").args(&["type"]),
            ],
        );
        obj(
            "Mutation",
            vec![
                o("bulkOperationRunQuery", "BulkOperationRunQueryPayload").args(&["query", "groupObjects"]),
                o("bulkOperationCancel", "BulkOperationCancelPayload").args(&["id"]),
            ],
        );
        obj(
            "BulkOperationRunQueryPayload",
            vec![o("bulkOperation", "BulkOperation"), l("userErrors", "BulkOperationUserError")],
        );
        obj("BulkOperationCancelPayload", vec![o("bulkOperation", "BulkOperation"), l("userErrors", "UserError")]);
        obj(
            "BulkOperationUserError",
            vec![sl("field", "String"), s("message", "String"), s("code", "BulkOperationUserErrorCode")],
        );
        obj("UserError", vec![sl("field", "String"), s("message", "String")]);
        obj(
            "BulkOperation",
            vec![
                s("id", "ID"),
                s("status", "BulkOperationStatus"),
                s("errorCode", "BulkOperationErrorCode"),
                s("createdAt", "DateTime"),
                s("completedAt", "DateTime"),
                s("objectCount", "UnsignedInt64"),
                s("rootObjectCount", "UnsignedInt64"),
                s("fileSize", "UnsignedInt64"),
                s("url", "URL"),
                s("partialDataUrl", "URL"),
                s("query", "String"),
                s("type", "BulkOperationType"),
            ],
        );
        obj(
            "Shop",
            vec![
                s("id", "ID"),
                s("name", "String"),
                s("email", "String"),
                s("contactEmail", "String"),
                s("myshopifyDomain", "String"),
                s("ianaTimezone", "String"),
                s("timezoneOffset", "String"),
                s("timezoneOffsetMinutes", "Int"),
                s("timezoneAbbreviation", "String"),
                s("currencyCode", "CurrencyCode"),
                sl("enabledPresentmentCurrencies", "CurrencyCode"),
                s("createdAt", "DateTime"),
                o("plan", "ShopPlan"),
            ],
        );
        obj(
            "ShopPlan",
            vec![s("displayName", "String"), s("partnerDevelopment", "Boolean"), s("shopifyPlus", "Boolean")],
        );
        obj("AppInstallation", vec![s("id", "ID"), l("accessScopes", "AccessScope")]);
        obj("AccessScope", vec![s("handle", "String"), s("description", "String")]);
        obj(
            "Order",
            vec![
                s("id", "ID"),
                s("legacyResourceId", "UnsignedInt64"),
                s("name", "String"),
                s("number", "Int"),
                s("confirmationNumber", "String"),
                s("createdAt", "DateTime"),
                s("updatedAt", "DateTime"),
                s("processedAt", "DateTime"),
                s("cancelledAt", "DateTime"),
                s("cancelReason", "OrderCancelReason"),
                s("closed", "Boolean"),
                s("closedAt", "DateTime"),
                s("confirmed", "Boolean"),
                s("test", "Boolean"),
                sl("tags", "String"),
                s("note", "String"),
                s("sourceName", "String"),
                s("sourceIdentifier", "String"),
                s("email", "String"),
                s("phone", "String"),
                s("customerAcceptsMarketing", "Boolean"),
                s("customerLocale", "String"),
                s("statusPageUrl", "URL"),
                s("currencyCode", "CurrencyCode"),
                s("presentmentCurrencyCode", "CurrencyCode"),
                s("displayFinancialStatus", "OrderDisplayFinancialStatus"),
                s("displayFulfillmentStatus", "OrderDisplayFulfillmentStatus"),
                s("fullyPaid", "Boolean"),
                s("unpaid", "Boolean"),
                s("taxesIncluded", "Boolean"),
                s("taxExempt", "Boolean"),
                sl("discountCodes", "String"),
                s("discountCode", "String"),
                o("customer", "Customer"),
                money("subtotalPriceSet"),
                money("currentSubtotalPriceSet"),
                money("totalDiscountsSet"),
                money("currentTotalDiscountsSet"),
                money("cartDiscountAmountSet"),
                money("totalShippingPriceSet"),
                money("currentShippingPriceSet"),
                money("totalTaxSet"),
                money("currentTotalTaxSet"),
                money("totalPriceSet"),
                money("originalTotalPriceSet"),
                money("currentTotalPriceSet"),
                money("totalRefundedSet"),
                money("totalRefundedShippingSet"),
                money("totalReceivedSet"),
                money("netPaymentSet"),
                money("totalOutstandingSet"),
                money("totalTipReceivedSet"),
                o("customerJourneySummary", "CustomerJourneySummary"),
                c("discountApplications", "DiscountApplication"),
                c("lineItems", "LineItem"),
                c("shippingLines", "ShippingLine"),
                l("taxLines", "TaxLine"),
                lf("refunds", "Refund"),
                lf("transactions", "OrderTransaction"),
            ],
        );
        obj(
            "LineItem",
            vec![
                s("id", "ID"),
                s("name", "String"),
                s("title", "String"),
                s("variantTitle", "String"),
                s("sku", "String"),
                s("vendor", "String"),
                s("quantity", "Int"),
                s("currentQuantity", "Int"),
                s("refundableQuantity", "Int"),
                s("unfulfilledQuantity", "Int"),
                s("nonFulfillableQuantity", "Int"),
                s("taxable", "Boolean"),
                s("isGiftCard", "Boolean"),
                s("requiresShipping", "Boolean"),
                o("product", "Product"),
                o("variant", "ProductVariant"),
                money("originalUnitPriceSet"),
                money("discountedUnitPriceSet"),
                money("discountedUnitPriceAfterAllDiscountsSet"),
                money("originalTotalSet"),
                money("discountedTotalSet"),
                money("totalDiscountSet"),
                l("customAttributes", "Attribute"),
                l("discountAllocations", "DiscountAllocation"),
                l("taxLines", "TaxLine"),
            ],
        );
        obj("Attribute", vec![s("key", "String"), s("value", "String")]);
        obj("DiscountAllocation", vec![money("allocatedAmountSet"), o("discountApplication", "DiscountApplication")]);
        obj("TaxLine", vec![s("title", "String"), s("rate", "Float"), s("ratePercentage", "Float"), money("priceSet")]);
        obj(
            "ShippingLine",
            vec![
                s("id", "ID"),
                s("title", "String"),
                s("code", "String"),
                s("source", "String"),
                s("isRemoved", "Boolean"),
                money("originalPriceSet"),
                money("discountedPriceSet"),
                money("currentDiscountedPriceSet"),
            ],
        );
        obj("MoneyBag", vec![o("shopMoney", "MoneyV2"), o("presentmentMoney", "MoneyV2")]);
        obj("MoneyV2", vec![s("amount", "Decimal"), s("currencyCode", "CurrencyCode")]);
        obj("PricingPercentageValue", vec![s("percentage", "Float")]);
        let discount_common = || {
            vec![
                s("allocationMethod", "DiscountApplicationAllocationMethod"),
                s("index", "Int"),
                s("targetSelection", "DiscountApplicationTargetSelection"),
                s("targetType", "DiscountApplicationTargetType"),
                o("value", "PricingValue"),
            ]
        };
        let with = |mut v: Vec<FieldDef>, extra: Vec<FieldDef>| {
            v.extend(extra);
            v
        };
        obj("DiscountCodeApplication", with(discount_common(), vec![s("code", "String")]));
        obj("AutomaticDiscountApplication", with(discount_common(), vec![s("title", "String")]));
        obj(
            "ManualDiscountApplication",
            with(discount_common(), vec![s("title", "String"), s("description", "String")]),
        );
        obj("ScriptDiscountApplication", with(discount_common(), vec![s("title", "String")]));
        obj(
            "Refund",
            vec![
                s("id", "ID"),
                s("legacyResourceId", "UnsignedInt64"),
                s("createdAt", "DateTime"),
                s("updatedAt", "DateTime"),
                s("note", "String"),
                money("totalRefundedSet"),
                c("refundLineItems", "RefundLineItem"),
                c("transactions", "OrderTransaction"),
            ],
        );
        obj(
            "RefundLineItem",
            vec![
                s("id", "ID"),
                s("quantity", "Int"),
                s("restockType", "RefundLineItemRestockType"),
                s("restocked", "Boolean"),
                o("lineItem", "LineItem"),
                money("priceSet"),
                money("subtotalSet"),
                money("totalTaxSet"),
            ],
        );
        obj(
            "OrderTransaction",
            vec![
                s("id", "ID"),
                s("kind", "OrderTransactionKind"),
                s("status", "OrderTransactionStatus"),
                s("gateway", "String"),
                s("formattedGateway", "String"),
                s("processedAt", "DateTime"),
                s("createdAt", "DateTime"),
                s("test", "Boolean"),
                s("errorCode", "OrderTransactionErrorCode"),
                s("authorizationCode", "String"),
                money("amountSet"),
                o("parentTransaction", "OrderTransaction"),
            ],
        );
        obj(
            "CustomerJourneySummary",
            vec![
                s("ready", "Boolean"),
                s("customerOrderIndex", "Int"),
                s("daysToConversion", "Int"),
                o("momentsCount", "Count"),
                o("firstVisit", "CustomerVisit"),
                o("lastVisit", "CustomerVisit"),
            ],
        );
        obj("Count", vec![s("count", "Int"), s("precision", "CountPrecision")]);
        obj(
            "CustomerVisit",
            vec![
                s("id", "ID"),
                s("occurredAt", "DateTime"),
                s("landingPage", "URL"),
                s("landingPageHtml", "HTML"),
                s("referrerUrl", "URL"),
                s("referralCode", "String"),
                s("referralInfoHtml", "FormattedString"),
                s("source", "String"),
                s("sourceType", "MarketingTactic"),
                s("sourceDescription", "String"),
                o("utmParameters", "UTMParameters"),
            ],
        );
        obj(
            "UTMParameters",
            vec![
                s("source", "String"),
                s("medium", "String"),
                s("campaign", "String"),
                s("content", "String"),
                s("term", "String"),
            ],
        );
        obj(
            "Customer",
            vec![
                s("id", "ID"),
                s("legacyResourceId", "UnsignedInt64"),
                s("createdAt", "DateTime"),
                s("updatedAt", "DateTime"),
                s("firstName", "String"),
                s("lastName", "String"),
                s("displayName", "String"),
                // Deprecated since 2025-04 in favour of defaultEmailAddress/defaultPhoneNumber,
                // still served.
                s("email", "String"),
                s("phone", "String"),
                s("state", "CustomerState"),
                s("verifiedEmail", "Boolean"),
                s("taxExempt", "Boolean"),
                sl("tags", "String"),
                s("note", "String"),
                s("locale", "String"),
                s("numberOfOrders", "UnsignedInt64"),
                o("amountSpent", "MoneyV2"),
                o("lastOrder", "Order"),
                o("defaultAddress", "MailingAddress"),
                lf("addresses", "MailingAddress"),
                o("defaultEmailAddress", "CustomerEmailAddress"),
                o("defaultPhoneNumber", "CustomerPhoneNumber"),
                o("emailMarketingConsent", "CustomerEmailMarketingConsentState"),
                o("smsMarketingConsent", "CustomerSmsMarketingConsentState"),
                s("dataSaleOptOut", "Boolean"),
                s("canDelete", "Boolean"),
            ],
        );
        obj(
            "CustomerEmailAddress",
            vec![
                s("emailAddress", "String"),
                s("marketingState", "CustomerEmailAddressMarketingState"),
                s("marketingOptInLevel", "CustomerMarketingOptInLevel"),
                s("marketingUpdatedAt", "DateTime"),
                s("openTrackingLevel", "CustomerEmailAddressOpenTrackingLevel"),
                s("sourceLocation", "Location"),
                s("validFormat", "Boolean"),
            ],
        );
        obj(
            "CustomerPhoneNumber",
            vec![
                s("phoneNumber", "String"),
                s("marketingState", "CustomerSmsMarketingState"),
                s("marketingOptInLevel", "CustomerMarketingOptInLevel"),
                s("marketingUpdatedAt", "DateTime"),
                s("marketingCollectedFrom", "CustomerConsentCollectedFrom"),
                o("smsMarketingConsent", "SmsMarketingConsent").since("2026-10"),
            ],
        );
        obj(
            "SmsMarketingConsent",
            vec![
                s("marketingState", "CustomerSmsMarketingState"),
                s("marketingOptInLevel", "CustomerMarketingOptInLevel"),
                s("consentUpdatedAt", "DateTime"),
                s("consentCollectedFrom", "CustomerConsentCollectedFrom"),
            ],
        );
        obj(
            "CustomerEmailMarketingConsentState",
            vec![
                s("marketingState", "CustomerEmailMarketingState"),
                s("marketingOptInLevel", "CustomerMarketingOptInLevel"),
                s("consentUpdatedAt", "DateTime"),
            ],
        );
        obj(
            "CustomerSmsMarketingConsentState",
            vec![
                s("marketingState", "CustomerSmsMarketingState"),
                s("marketingOptInLevel", "CustomerMarketingOptInLevel"),
                s("consentUpdatedAt", "DateTime"),
                s("consentCollectedFrom", "CustomerConsentCollectedFrom"),
            ],
        );
        obj(
            "MailingAddress",
            vec![
                s("id", "ID"),
                s("firstName", "String"),
                s("lastName", "String"),
                s("name", "String"),
                s("company", "String"),
                s("address1", "String"),
                s("address2", "String"),
                s("city", "String"),
                s("province", "String"),
                s("provinceCode", "String"),
                s("country", "String"),
                s("countryCodeV2", "CountryCode"),
                s("zip", "String"),
                s("phone", "String"),
            ],
        );
        obj(
            "Product",
            vec![
                s("id", "ID"),
                s("legacyResourceId", "UnsignedInt64"),
                s("title", "String"),
                s("handle", "String"),
                s("productType", "String"),
                s("vendor", "String"),
                s("status", "ProductStatus"),
                sl("tags", "String"),
                s("description", "String"),
                s("createdAt", "DateTime"),
                s("updatedAt", "DateTime"),
                s("publishedAt", "DateTime"),
                s("totalInventory", "Int"),
                c("variants", "ProductVariant"),
                lf("options", "ProductOption"),
            ],
        );
        obj("ProductOption", vec![s("id", "ID"), s("name", "String"), sl("values", "String")]);
        obj(
            "ProductVariant",
            vec![
                s("id", "ID"),
                s("legacyResourceId", "UnsignedInt64"),
                s("title", "String"),
                s("displayName", "String"),
                s("sku", "String"),
                s("barcode", "String"),
                s("price", "Money"),
                s("compareAtPrice", "Money"),
                s("inventoryQuantity", "Int"),
                s("position", "Int"),
                s("taxable", "Boolean"),
                s("createdAt", "DateTime"),
                s("updatedAt", "DateTime"),
                o("product", "Product"),
                o("inventoryItem", "InventoryItem"),
                l("selectedOptions", "SelectedOption"),
            ],
        );
        obj("SelectedOption", vec![s("name", "String"), s("value", "String")]);
        obj(
            "InventoryItem",
            vec![
                s("id", "ID"),
                s("legacyResourceId", "UnsignedInt64"),
                s("sku", "String"),
                s("tracked", "Boolean"),
                s("requiresShipping", "Boolean"),
                s("createdAt", "DateTime"),
                s("updatedAt", "DateTime"),
                o("unitCost", "MoneyV2"),
                s("countryCodeOfOrigin", "CountryCode"),
                s("harmonizedSystemCode", "String"),
                o("variant", "ProductVariant"),
            ],
        );
        obj(
            "PageInfo",
            vec![
                s("hasNextPage", "Boolean"),
                s("hasPreviousPage", "Boolean"),
                s("startCursor", "String"),
                s("endCursor", "String"),
            ],
        );
        types.push(TypeDef { name: "Node", kind: Kind::Interface(NODE_TYPES.to_vec()), fields: vec![s("id", "ID")] });
        types.push(TypeDef {
            name: "DiscountApplication",
            kind: Kind::Interface(DISCOUNT_APPLICATIONS.to_vec()),
            fields: discount_common(),
        });
        types.push(TypeDef {
            name: "PricingValue",
            kind: Kind::Union(vec!["MoneyV2", "PricingPercentageValue"]),
            fields: Vec::new(),
        });
        // Connection and edge types for every node type some connection returns.
        let mut nodes: Vec<&'static str> = types
            .iter()
            .flat_map(|t| t.fields.iter())
            .filter_map(|f| match f.ty {
                Ty::Connection(n) => Some(n),
                _ => None,
            })
            .collect();
        nodes.sort_unstable();
        nodes.dedup();
        for n in nodes {
            let conn: &'static str = Box::leak(format!("{n}Connection").into_boxed_str());
            let edge: &'static str = Box::leak(format!("{n}Edge").into_boxed_str());
            types.push(TypeDef {
                name: conn,
                kind: Kind::Object,
                fields: vec![o("pageInfo", "PageInfo"), l("edges", edge), l("nodes", n)],
            });
            types.push(TypeDef { name: edge, kind: Kind::Object, fields: vec![s("cursor", "String"), o("node", n)] });
        }
        Schema { types: types.into_iter().map(|t| (t.name, t)).collect() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_referenced_type_exists() {
        let schema = Schema::get();
        for t in schema.types.values() {
            for f in &t.fields {
                if let Some(target) = f.ty.target() {
                    assert!(schema.ty(&target).is_some(), "{}.{} -> {target}", t.name, f.name);
                }
            }
            if let Kind::Interface(p) | Kind::Union(p) = &t.kind {
                for name in p {
                    assert!(schema.ty(name).is_some(), "{} member {name}", t.name);
                }
            }
        }
    }
}
