//! Message bodies and SMS segment counting.
//!
//! Carriers bill per segment, and the segment count depends on the encoding the whole body needs:
//! GSM 03.38 (7-bit, 160 characters alone or 153 per part of a concatenated message) unless one
//! character is outside it, in which case the body goes as UCS-2 (70 alone, 67 per part, counted
//! in UTF-16 units, so an emoji takes two). The bodies below are chosen to hit every case.

/// GSM 03.38 basic character set (one septet each).
const GSM_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// GSM 03.38 extension table (escape + character: two septets each).
const GSM_EXTENDED: &str = "^{}\\[~]|€\u{000C}";

/// How a body is encoded on the air.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SmsEncoding {
    Gsm7,
    Ucs2,
}

/// The encoding and segment count of `text` (an empty body still costs one segment).
pub fn segments(text: &str) -> (SmsEncoding, u32) {
    let mut septets = 0u32;
    for c in text.chars() {
        if GSM_BASIC.contains(c) {
            septets += 1;
        } else if GSM_EXTENDED.contains(c) {
            septets += 2;
        } else {
            let units = text.encode_utf16().count() as u32;
            return (SmsEncoding::Ucs2, parts(units, 70, 67));
        }
    }
    (SmsEncoding::Gsm7, parts(septets, 160, 153))
}

fn parts(len: u32, single: u32, per_part: u32) -> u32 {
    if len <= single { 1 } else { len.div_ceil(per_part) }
}

/// A URL-safe slug: lower-case ASCII letters and digits, other runs become one `-`.
pub fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

/// Journey step bodies: (journey index, step) → text. `{shop}` and `{link}` are filled in.
pub fn journey_body(journey: usize, step: u32, shop: &str, link: &str) -> String {
    match (journey, step) {
        // GSM, one segment.
        (0, 1) => {
            format!("{shop}: Welcome to the club! Here's 15% off your first order with code WELCOME15. Shop: {link}")
        }
        // GSM, over 160: three parts of 153.
        (0, 2) => format!(
            "{shop}: Still deciding? Our best-sellers are made in small batches with plant-based ingredients, \
             and every order ships free over $50. Your 15% off code WELCOME15 expires tonight at midnight, \
             so now is the time: {link} Reply STOP to opt out."
        ),
        // Emoji: UCS-2, two parts of 67.
        _ => format!(
            "{shop}: Thank you for your order! 🌿 We're packing it with care. Track it and find care tips here: {link}"
        ),
    }
}

/// Campaign themes by calendar month (January first).
pub const CAMPAIGN_THEMES: [&str; 12] = [
    "New Year Reset",
    "Valentine's Gift Guide",
    "Spring Refresh",
    "Earth Month Favorites",
    "Mother's Day Picks",
    "Summer Essentials",
    "Mid-Summer Sale",
    "Back to Routine",
    "Fall Restock",
    "Cozy Season",
    "Black Friday Early Access",
    "Holiday Gift Guide",
];

/// A campaign body; the four shapes rotate by month.
pub fn campaign_body(month_index: u32, theme: &str, shop: &str, link: &str) -> String {
    match month_index % 4 {
        // GSM, short.
        0 => format!("{shop}: {theme} is live. Shop the edit: {link} Reply STOP to opt out"),
        // `ç` is outside GSM 03.38 (unlike `é`): UCS-2, over 70.
        1 => format!("{shop}: {theme} - our façade gets a new look and so does your shelf. {link}"),
        // GSM with extension-table characters (`€`, `[`, `]` take two septets), over 160.
        2 => format!(
            "{shop}: {theme} [members only] - take 20% off sitewide, or €10 off orders over €60 in the EU store. \
             Stock up on the serums and cleansers you love before they sell out: {link} Reply STOP to opt out"
        ),
        // Emoji and long: UCS-2, several parts.
        _ => format!(
            "{shop} ✨ {theme} ✨ Fresh arrivals, restocked favorites and a free travel-size gift with every order over $40 \
             this week only. {link} Reply STOP to opt out"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm_and_ucs2_segments() {
        assert_eq!(segments(""), (SmsEncoding::Gsm7, 1));
        assert_eq!(segments(&"a".repeat(160)), (SmsEncoding::Gsm7, 1));
        assert_eq!(segments(&"a".repeat(161)), (SmsEncoding::Gsm7, 2));
        assert_eq!(segments(&"a".repeat(306)), (SmsEncoding::Gsm7, 2));
        assert_eq!(segments(&"a".repeat(307)), (SmsEncoding::Gsm7, 3));
        // `é` is GSM; `€` takes two septets.
        assert_eq!(segments(&"é".repeat(160)), (SmsEncoding::Gsm7, 1));
        assert_eq!(segments(&"€".repeat(80)), (SmsEncoding::Gsm7, 1));
        assert_eq!(segments(&"€".repeat(81)), (SmsEncoding::Gsm7, 2));
        // One non-GSM character switches the whole body to UCS-2.
        assert_eq!(segments(&format!("{}ç", "a".repeat(69))), (SmsEncoding::Ucs2, 1));
        assert_eq!(segments(&format!("{}ç", "a".repeat(70))), (SmsEncoding::Ucs2, 2));
        assert_eq!(segments(&format!("{}ç", "a".repeat(134))), (SmsEncoding::Ucs2, 3));
        // An emoji is two UTF-16 units.
        assert_eq!(segments(&format!("{}🌿", "a".repeat(68))), (SmsEncoding::Ucs2, 1));
        assert_eq!(segments(&format!("{}🌿", "a".repeat(69))), (SmsEncoding::Ucs2, 2));
    }

    #[test]
    fn bodies_cover_every_encoding_case() {
        let link = "https://fernhill-botanics.myshopify.com/s/abc";
        let shop = "Fernhill Botanics";
        assert_eq!(segments(&journey_body(0, 1, shop, link)), (SmsEncoding::Gsm7, 1));
        let (enc, n) = segments(&journey_body(0, 2, shop, link));
        assert_eq!(enc, SmsEncoding::Gsm7);
        assert!(n >= 2);
        assert_eq!(segments(&journey_body(1, 1, shop, link)).0, SmsEncoding::Ucs2);
        let encodings: Vec<_> = (0..4).map(|m| segments(&campaign_body(m, "Fall Restock", shop, link))).collect();
        assert_eq!(encodings[0], (SmsEncoding::Gsm7, 1));
        assert_eq!(encodings[1].0, SmsEncoding::Ucs2);
        assert_eq!(encodings[2].0, SmsEncoding::Gsm7);
        assert!(encodings[2].1 >= 2);
        assert!(encodings[3].0 == SmsEncoding::Ucs2 && encodings[3].1 >= 2);
    }

    #[test]
    fn slugs() {
        assert_eq!(slug("Valentine's Gift Guide - Feb 2026"), "valentine-s-gift-guide-feb-2026");
        assert_eq!(slug("Daily Glow Serum"), "daily-glow-serum");
    }
}
