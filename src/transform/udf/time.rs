//! `local_date(timestamp, iana_timezone)`: the calendar date of an instant in a timezone that
//! comes from data (the shop's), which DataFusion's casts cannot do (their timezone is part of
//! the type, a constant).

use std::sync::Arc;

use arrow::array::{Array, AsArray, Date32Builder};
use arrow::datatypes::{DataType, TimeUnit, TimestampMicrosecondType};
use chrono::{DateTime, NaiveDate};
use chrono_tz::Tz;
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};

use super::{arrays, output};

#[derive(Debug, PartialEq, Eq, Hash)]
struct LocalDate {
    signature: Signature,
}

/// Every time function.
pub fn all() -> Vec<ScalarUDF> {
    vec![ScalarUDF::new_from_impl(LocalDate { signature: Signature::any(2, Volatility::Immutable) })]
}

impl ScalarUDFImpl for LocalDate {
    fn name(&self) -> &str {
        "local_date"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [
                DataType::Timestamp(_, _) | DataType::Null,
                DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 | DataType::Null,
            ] => Ok(DataType::Date32),
            other => exec_err!("local_date(timestamp, iana_timezone) got {other:?}"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (input, scalar) = arrays(&args.args, args.number_rows)?;
        let [ts, tz] = input.as_slice() else { return exec_err!("local_date takes two arguments") };
        // Naive timestamps are taken as UTC, as landing does.
        let ts = arrow::compute::cast(ts, &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())))?;
        let tz = arrow::compute::cast(tz, &DataType::Utf8)?;
        let (ts, tz) = (ts.as_primitive::<TimestampMicrosecondType>(), tz.as_string::<i32>());
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch");
        let mut parsed: Option<(String, Tz)> = None;
        let mut out = Date32Builder::with_capacity(ts.len());
        for row in 0..ts.len() {
            if ts.is_null(row) || tz.is_null(row) {
                out.append_null();
                continue;
            }
            let name = tz.value(row);
            let zone = match &parsed {
                Some((n, z)) if n == name => *z,
                _ => match name.parse::<Tz>() {
                    Ok(z) => {
                        parsed = Some((name.to_string(), z));
                        z
                    }
                    Err(_) => return exec_err!("local_date: {name:?} is not an IANA timezone"),
                },
            };
            let Some(utc) = DateTime::from_timestamp_micros(ts.value(row)) else {
                return exec_err!("local_date: timestamp {} is out of range", ts.value(row));
            };
            out.append_value((utc.with_timezone(&zone).date_naive() - epoch).num_days() as i32);
        }
        output(Arc::new(out.finish()), scalar)
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Date32Array, RecordBatch, StringArray, TimestampMicrosecondArray};
    use datafusion::prelude::SessionContext;

    use super::*;

    #[tokio::test]
    async fn dates_follow_the_named_zone_and_its_daylight_saving() {
        let ctx = SessionContext::new();
        crate::transform::udf::register(&ctx);
        let micros = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().timestamp_micros();
        let ts = TimestampMicrosecondArray::from(vec![
            Some(micros("2026-03-01T04:59:59Z")), // 23:59:59 EST on Feb 28
            Some(micros("2026-07-01T04:00:00Z")), // 00:00 EDT on Jul 1
            Some(micros("2026-03-01T04:59:59Z")),
            None,
            Some(micros("2026-03-01T04:59:59Z")),
        ])
        .with_timezone("UTC");
        let tz = StringArray::from(vec![
            Some("America/New_York"),
            Some("America/New_York"),
            Some("Asia/Tokyo"),
            Some("UTC"),
            None,
        ]);
        let batch = RecordBatch::try_from_iter(vec![("ts", Arc::new(ts) as _), ("tz", Arc::new(tz) as _)]).unwrap();
        ctx.register_batch("t", batch).unwrap();
        let b = ctx.sql("select local_date(ts, tz) from t").await.unwrap().collect().await.unwrap();
        let d = b[0].column(0).as_any().downcast_ref::<Date32Array>().unwrap();
        let day = |y, m, dd| {
            (NaiveDate::from_ymd_opt(y, m, dd).unwrap() - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()).num_days()
                as i32
        };
        assert_eq!(d.value(0), day(2026, 2, 28));
        assert_eq!(d.value(1), day(2026, 7, 1));
        assert_eq!(d.value(2), day(2026, 3, 1));
        assert!(d.is_null(3) && d.is_null(4));

        let err = ctx.sql("select local_date(ts, 'Mars/Base') from t").await.unwrap().collect().await.unwrap_err();
        assert!(err.to_string().contains("Mars/Base"), "{err}");
    }
}
