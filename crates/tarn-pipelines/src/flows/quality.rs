//! Expectations over a flow's rows as the engine returned them, one boolean
//! verdict column per expectation: count what passed and failed, drop the
//! rows a DROP expectation refused, and stop at the first row a FAIL
//! expectation refused. A NULL verdict fails, as a row a `WHERE` would not keep.

use deltalake::arrow::array::{Array, BooleanArray};
use deltalake::arrow::compute::filter_record_batch;
use deltalake::arrow::record_batch::RecordBatch;
use deltalake::arrow::util::display::array_value_to_string;
use serde_json::{Value, json};

use super::relation::verdict_column;
use crate::graph::{Action, Expectation};

/// What the expectations of one flow counted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Quality {
    pub passed: Vec<u64>,
    pub failed: Vec<u64>,
    pub dropped: u64,
}

impl Quality {
    /// The counts of two batches together.
    pub fn plus(&self, other: &Quality) -> Quality {
        let add = |a: &[u64], b: &[u64]| a.iter().zip(b).map(|(x, y)| x + y).collect();
        Quality {
            passed: add(&self.passed, &other.passed),
            failed: add(&self.failed, &other.failed),
            dropped: self.dropped + other.dropped,
        }
    }

    /// `flow_progress.data_quality` of the event log.
    pub fn to_event(&self, expectations: &[Expectation], dataset: &str) -> Value {
        let each: Vec<Value> = expectations
            .iter()
            .enumerate()
            .map(|(i, e)| {
                json!({"name": e.name, "dataset": dataset, "passed_records": self.passed[i], "failed_records": self.failed[i]})
            })
            .collect();
        json!({"dropped_records": self.dropped, "expectations": each})
    }
}

/// Adds `more` (a `data_quality` event of a view the flow read) to `event`.
pub fn merge_event(event: &mut Value, more: &Value) {
    let dropped = event["dropped_records"].as_u64().unwrap_or(0) + more["dropped_records"].as_u64().unwrap_or(0);
    event["dropped_records"] = json!(dropped);
    let extra = more["expectations"].as_array().cloned().unwrap_or_default();
    match event["expectations"].as_array_mut() {
        Some(list) => list.extend(extra),
        None => event["expectations"] = Value::Array(extra),
    }
}

/// A FAIL expectation a row did not meet: its name and the row's values.
#[derive(Debug, Clone)]
pub struct Violation {
    pub expectation: String,
    pub condition: String,
    pub row: String,
}

impl Violation {
    /// What the update's error says.
    pub fn message(&self, dataset: &str) -> String {
        format!(
            "Expectation '{}' ({}) failed on dataset '{dataset}': the row {} violates it; the update stops before the \
             flow writes anything",
            self.expectation, self.condition, self.row
        )
    }
}

fn verdicts(batch: &RecordBatch, count: usize) -> Result<Vec<BooleanArray>, String> {
    (0..count)
        .map(|i| {
            let column = batch
                .column_by_name(&verdict_column(i))
                .ok_or_else(|| format!("the engine returned no verdict column {}", verdict_column(i)))?;
            column
                .as_any()
                .downcast_ref::<BooleanArray>()
                .cloned()
                .ok_or_else(|| format!("expectation {i} is not a boolean expression"))
        })
        .collect()
}

pub(crate) fn row_text(batch: &RecordBatch, row: usize, data_columns: usize) -> String {
    let schema = batch.schema();
    let fields = (0..data_columns).map(|c| {
        let value = array_value_to_string(batch.column(c), row).unwrap_or_else(|_| "?".into());
        let value = if batch.column(c).is_null(row) { "null".to_string() } else { value };
        format!("{}: {value}", schema.field(c).name())
    });
    format!("{{{}}}", fields.collect::<Vec<_>>().join(", "))
}

/// The rows to write (verdict columns removed) and the counts.
pub fn apply(
    batches: Vec<RecordBatch>,
    expectations: &[Expectation],
) -> Result<(Vec<RecordBatch>, Quality), Violation> {
    let n = expectations.len();
    let mut quality = Quality { passed: vec![0; n], failed: vec![0; n], dropped: 0 };
    if n == 0 {
        return Ok((batches, quality));
    }
    let mut kept = Vec::with_capacity(batches.len());
    for batch in batches {
        let data_columns = batch.num_columns().saturating_sub(n);
        let verdicts = verdicts(&batch, n).map_err(|e| Violation {
            expectation: String::new(),
            condition: String::new(),
            row: e,
        })?;
        let mut keep = vec![true; batch.num_rows()];
        for (i, (verdict, expectation)) in verdicts.iter().zip(expectations).enumerate() {
            for (row, keep_row) in keep.iter_mut().enumerate() {
                let met = verdict.is_valid(row) && verdict.value(row);
                if met {
                    quality.passed[i] += 1;
                    continue;
                }
                quality.failed[i] += 1;
                match expectation.action {
                    Action::Warn => {}
                    Action::Drop => *keep_row = false,
                    Action::Fail => {
                        return Err(Violation {
                            expectation: expectation.name.clone(),
                            condition: expectation.condition.clone(),
                            row: row_text(&batch, row, data_columns),
                        });
                    }
                }
            }
        }
        quality.dropped += keep.iter().filter(|k| !**k).count() as u64;
        let data = batch.project(&(0..data_columns).collect::<Vec<_>>()).map_err(|e| Violation {
            expectation: String::new(),
            condition: String::new(),
            row: e.to_string(),
        })?;
        let mask = BooleanArray::from(keep);
        let filtered = filter_record_batch(&data, &mask).map_err(|e| Violation {
            expectation: String::new(),
            condition: String::new(),
            row: e.to_string(),
        })?;
        kept.push(filtered);
    }
    Ok((kept, quality))
}

#[cfg(test)]
mod tests {
    use super::*;
    use deltalake::arrow::array::Int64Array;
    use deltalake::arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    fn expectation(name: &str, action: Action) -> Expectation {
        Expectation { name: name.into(), condition: format!("{name} holds"), action }
    }

    fn batch(ids: Vec<i64>, a: Vec<Option<bool>>, b: Vec<Option<bool>>) -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new(verdict_column(0), DataType::Boolean, true),
            Field::new(verdict_column(1), DataType::Boolean, true),
        ]);
        let columns: Vec<Arc<dyn Array>> =
            vec![Arc::new(Int64Array::from(ids)), Arc::new(BooleanArray::from(a)), Arc::new(BooleanArray::from(b))];
        RecordBatch::try_new(Arc::new(schema), columns).unwrap()
    }

    #[test]
    fn drop_removes_rows_warn_keeps_them_and_null_fails() {
        let rows = batch(
            vec![1, 2, 3, 4],
            vec![Some(true), Some(false), None, Some(true)],
            vec![Some(false), Some(true), Some(true), Some(true)],
        );
        let expectations = [expectation("a", Action::Drop), expectation("b", Action::Warn)];
        let (kept, quality) = apply(vec![rows], &expectations).unwrap();
        assert_eq!(quality, Quality { passed: vec![2, 3], failed: vec![2, 1], dropped: 2 });
        assert_eq!(kept[0].num_columns(), 1);
        let ids = kept[0].column(0).as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!(ids.values(), &[1, 4]);
    }

    #[test]
    fn fail_names_the_expectation_and_the_row() {
        let rows = batch(vec![7, 8], vec![Some(true), Some(false)], vec![Some(true), Some(true)]);
        let violation =
            apply(vec![rows], &[expectation("a", Action::Fail), expectation("b", Action::Warn)]).unwrap_err();
        assert_eq!(violation.expectation, "a");
        assert_eq!(violation.row, "{id: 8}");
    }
}
