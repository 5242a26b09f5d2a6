//! `sms_segments(body)`: how many segments a carrier bills for an SMS body (models.md 4.4), for
//! platforms that land the text but not the count (Postscript's warehouse push). GSM-7 bodies:
//! 160 characters in one segment, 153 per part when concatenated (the extension table's
//! characters count twice: they travel behind an escape). Any character outside GSM-7 switches
//! the whole body to UCS-2: 70 in one segment, 67 per part, counted in UTF-16 code units (an
//! emoji is two). An empty body is one segment; NULL gives NULL.

use std::sync::Arc;

use arrow::array::{Array, AsArray, Int32Array};
use arrow::datatypes::DataType;
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};

use super::{arrays, output};

/// The GSM 03.38 basic character set.
const GSM_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// The extension table: each costs an escape plus the character.
const GSM_EXTENSION: &str = "^{}\\[~]|€\x0c";

/// Segments of one body.
pub fn segments(body: &str) -> i32 {
    let mut septets = 0usize;
    let mut gsm = true;
    for c in body.chars() {
        if GSM_BASIC.contains(c) {
            septets += 1;
        } else if GSM_EXTENSION.contains(c) {
            septets += 2;
        } else {
            gsm = false;
            break;
        }
    }
    let (len, single, part) = if gsm { (septets, 160, 153) } else { (body.encode_utf16().count(), 70, 67) };
    if len <= single { 1 } else { len.div_ceil(part) as i32 }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct SmsSegments {
    signature: Signature,
}

/// The function.
pub fn all() -> Vec<ScalarUDF> {
    vec![ScalarUDF::new_from_impl(SmsSegments { signature: Signature::any(1, Volatility::Immutable) })]
}

impl ScalarUDFImpl for SmsSegments {
    fn name(&self) -> &str {
        "sms_segments"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 | DataType::Null] => Ok(DataType::Int32),
            other => exec_err!("sms_segments(body) got {other:?}"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (input, scalar) = arrays(&args.args, args.number_rows)?;
        let [body] = input.as_slice() else { return exec_err!("sms_segments takes one argument") };
        let body = arrow::compute::cast(body, &DataType::Utf8)?;
        let body = body.as_string::<i32>();
        let out: Int32Array = (0..body.len()).map(|i| body.is_valid(i).then(|| segments(body.value(i)))).collect();
        output(Arc::new(out), scalar)
    }
}

#[cfg(test)]
mod tests {
    use super::segments;

    #[test]
    fn gsm_and_ucs2_bodies_count_as_carriers_bill_them() {
        assert_eq!(segments(""), 1);
        assert_eq!(segments(&"a".repeat(160)), 1);
        assert_eq!(segments(&"a".repeat(161)), 2);
        assert_eq!(segments(&"a".repeat(306)), 2);
        assert_eq!(segments(&"a".repeat(307)), 3);
        // The extension table costs two septets each: 80 euro signs fill one segment.
        assert_eq!(segments(&"€".repeat(80)), 1);
        assert_eq!(segments(&"€".repeat(81)), 2);
        // One character outside GSM-7 makes the whole body UCS-2.
        assert_eq!(segments(&format!("{}ç", "a".repeat(69))), 1);
        assert_eq!(segments(&format!("{}ç", "a".repeat(70))), 2);
        // An emoji is two UTF-16 code units.
        assert_eq!(segments(&format!("{}🎉", "a".repeat(68))), 1);
        assert_eq!(segments(&format!("{}🎉", "a".repeat(69))), 2);
        assert_eq!(segments(&"ç".repeat(134)), 2);
        assert_eq!(segments(&"ç".repeat(135)), 3);
    }
}
