//! `local_date(timestamp, iana_timezone)` and `local_hour_of_week(timestamp, iana_timezone)`: the
//! calendar date, and the hour of the week, of an instant in a timezone that comes from data (the
//! shop's, a recipient's), which DataFusion's casts cannot do (their timezone is part of the
//! type, a constant).

use std::sync::Arc;

use std::collections::HashMap;

use arrow::array::{Array, AsArray, Date32Array, Int32Array};
use arrow::datatypes::{DataType, TimeUnit, TimestampMicrosecondType};
use chrono::{DateTime, Datelike, NaiveDate, Timelike};
use chrono_tz::Tz;
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};

use super::{arrays, output};

/// Which local calendar part of an instant a function returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Part {
    /// `local_date`: Date32.
    Date,
    /// `local_hour_of_week`: Int32, Monday 00:00-00:59 = 0 ... Sunday 23:00-23:59 = 167.
    HourOfWeek,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Local {
    name: &'static str,
    part: Part,
    signature: Signature,
}

/// Every time function.
pub fn all() -> Vec<ScalarUDF> {
    [("local_date", Part::Date), ("local_hour_of_week", Part::HourOfWeek)]
        .into_iter()
        .map(|(name, part)| {
            ScalarUDF::new_from_impl(Local { name, part, signature: Signature::any(2, Volatility::Immutable) })
        })
        .collect()
}

impl ScalarUDFImpl for Local {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [
                DataType::Timestamp(_, _) | DataType::Null,
                DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 | DataType::Null,
            ] => Ok(match self.part {
                Part::Date => DataType::Date32,
                Part::HourOfWeek => DataType::Int32,
            }),
            other => exec_err!("{}(timestamp, iana_timezone) got {other:?}", self.name),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let name = self.name;
        let (input, scalar) = arrays(&args.args, args.number_rows)?;
        let [ts, tz] = input.as_slice() else { return exec_err!("{name} takes two arguments") };
        // Naive timestamps are taken as UTC, as landing does.
        let ts = arrow::compute::cast(ts, &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())))?;
        let tz = arrow::compute::cast(tz, &DataType::Utf8)?;
        let (ts, tz) = (ts.as_primitive::<TimestampMicrosecondType>(), tz.as_string::<i32>());
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch");
        // Rows interleave a handful of zones (recipients' own): parse each name once.
        let mut zones: HashMap<&str, Tz> = HashMap::new();
        let mut out: Vec<Option<i32>> = Vec::with_capacity(ts.len());
        for row in 0..ts.len() {
            if ts.is_null(row) || tz.is_null(row) {
                out.push(None);
                continue;
            }
            let zone_name = tz.value(row);
            let zone = match zones.get(zone_name) {
                Some(z) => *z,
                None => match zone_name.parse::<Tz>() {
                    Ok(z) => *zones.entry(zone_name).or_insert(z),
                    Err(_) => return exec_err!("{name}: {zone_name:?} is not an IANA timezone"),
                },
            };
            let Some(utc) = DateTime::from_timestamp_micros(ts.value(row)) else {
                return exec_err!("{name}: timestamp {} is out of range", ts.value(row));
            };
            let local = utc.with_timezone(&zone);
            out.push(Some(match self.part {
                Part::Date => (local.date_naive() - epoch).num_days() as i32,
                Part::HourOfWeek => (local.weekday().num_days_from_monday() * 24 + local.hour()) as i32,
            }));
        }
        let array: arrow::array::ArrayRef = match self.part {
            Part::Date => Arc::new(Date32Array::from(out)),
            Part::HourOfWeek => Arc::new(Int32Array::from(out)),
        };
        output(array, scalar)
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

        // 2026-02-28 is a Saturday: 23:59 EST is hour 5 * 24 + 23; 2026-07-01 (Wednesday) 00:00
        // EDT is 2 * 24; 2026-03-01 13:59 in Tokyo is Sunday 6 * 24 + 13.
        let b = ctx.sql("select local_hour_of_week(ts, tz) from t").await.unwrap().collect().await.unwrap();
        let h = b[0].column(0).as_any().downcast_ref::<Int32Array>().unwrap();
        assert_eq!((h.value(0), h.value(1), h.value(2)), (143, 48, 157));
        assert!(h.is_null(3) && h.is_null(4));
    }
}
