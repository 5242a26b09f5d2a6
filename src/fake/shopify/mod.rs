//! The fake Shopify Admin API (being built).
