//! Scalar functions the SQL models need and DataFusion does not ship: reading JSON text (the
//! `_raw` record a raw contract keeps whole, nested arrays included) and local calendar dates
//! in a timezone named by a column, and two distribution functions (Beta quantiles, the normal
//! distribution function).
//!
//! | function | returns | what |
//! |---|---|---|
//! | `json_get(json, pointer)` | Utf8 | the value at a JSON pointer as text: strings unquoted, numbers and booleans as written, objects and arrays as compact JSON; NULL when absent or null |
//! | `json_get_int(json, pointer)` | Int64 | an integer or integer string |
//! | `json_get_decimal(json, pointer)` | Decimal(18,4) | a decimal string or number, exactly as landing types `Decimal` columns |
//! | `json_get_timestamp(json, pointer)` | Timestamp(µs, UTC) | an ISO-8601 timestamp, as landing types `Timestamp` columns |
//! | `json_array_items(json, pointer)` | List<Struct<position Int64, value Utf8>> | the elements of the array at the pointer (or of a GraphQL connection there: its `nodes`, or its `edges[].node`), each with its 0-based position and its JSON text; for `unnest` |
//! | `local_date(timestamp, iana_timezone)` | Date32 | the calendar date of the instant in that timezone (tz database, daylight-saving aware) |
//! | `local_hour_of_week(timestamp, iana_timezone)` | Int32 | the local hour of the week there, Monday 00:00 = 0 ... Sunday 23:00 = 167 |
//! | `beta_quantile(p, a, b)` | Float64 | the `p` quantile of Beta(a, b) (a zero parameter: a point mass at 0 or 1); NULL for invalid input |
//! | `normal_cdf(x)` | Float64 | the standard normal distribution function |
//! | `sms_segments(body)` | Int32 | the segments a carrier bills for an SMS body (GSM-7 160/153, else UCS-2 70/67) |
//!
//! Values of the wrong JSON type are errors naming the function, the pointer and the value, so a
//! source changing shape fails the model instead of silently turning into NULLs. Invalid JSON
//! text is an error as well.

pub mod json;
pub mod sms;
pub mod stats;
pub mod time;

use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, ScalarUDF};
use datafusion::prelude::SessionContext;

/// Registers every function of this module on `ctx`.
pub fn register(ctx: &SessionContext) {
    for udf in all() {
        ctx.register_udf(udf);
    }
}

/// Every function of this module.
pub fn all() -> Vec<ScalarUDF> {
    let mut out = json::all();
    out.extend(time::all());
    out.extend(stats::all());
    out.extend(sms::all());
    out
}

/// The arguments as arrays of one length, and whether they were all scalars (then the result
/// is given back as a scalar).
pub(crate) fn arrays(args: &[ColumnarValue], rows: usize) -> Result<(Vec<arrow::array::ArrayRef>, bool)> {
    let all_scalar = args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
    let len = if all_scalar { 1 } else { rows };
    let arrays = args.iter().map(|a| a.to_array(len)).collect::<Result<Vec<_>>>()?;
    Ok((arrays, all_scalar))
}

/// Wraps a result array as the function's value.
pub(crate) fn output(array: arrow::array::ArrayRef, scalar: bool) -> Result<ColumnarValue> {
    if scalar {
        Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&array, 0)?))
    } else {
        Ok(ColumnarValue::Array(array))
    }
}
