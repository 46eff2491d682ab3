//! An incremental read equals a full one: a Delta table written in two
//! appends, profiled once whole and once as the first version plus the
//! files the log says the second commit added, gives the same windows.
//! A DELETE's commit is not an append.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use deltalake::DeltaTable;
use deltalake::arrow::array::{Float64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use deltalake::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use tarn_monitor::changes::{self, Changes};
use tarn_monitor::profile::Sketch;
use tarn_monitor::scan::{self, Plan, Source, Windows};
use tarn_monitor::slicing::SliceSet;
use tarn_monitor::spec::Granularity;
use tarn_monitor::window::Pass;

const DAY_US: i64 = 86_400_000_000;

/// `n` rows from `first`, one an hour, so each day holds 24 of them.
fn rows(first: i64, n: i64) -> RecordBatch {
    let ts: Vec<i64> = (first..first + n).map(|i| i * DAY_US / 24).collect();
    let x: Vec<f64> = (first..first + n).map(|i| ((i * 37) % 101) as f64).collect();
    let kind: Vec<&str> = (first..first + n).map(|i| if i % 3 == 0 { "a" } else { "b" }).collect();
    let schema = Schema::new(vec![
        Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true),
        Field::new("x", DataType::Float64, true),
        Field::new("kind", DataType::Utf8, true),
    ]);
    RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(TimestampMicrosecondArray::from(ts).with_timezone("UTC")),
            Arc::new(Float64Array::from(x)),
            Arc::new(StringArray::from(kind)),
        ],
    )
    .unwrap()
}

async fn profile(table: &DeltaTable, files: Option<Vec<String>>, slices: &[SliceSet]) -> Pass {
    let granularities = [("1 day".to_string(), Granularity::parse("1 day").unwrap())];
    let windows = Windows::Timed { timestamp_col: "ts", granularities: &granularities, model_col: None };
    let version = table.version().unwrap_or_default() as i64;
    let plan = Plan { windows, scoring: None, slices, version };
    let source = Source::open(table, files).await.unwrap();
    scan::scan(source, &plan, &AtomicBool::new(false)).await.unwrap().0
}

fn summary(pass: &mut Pass) -> Vec<String> {
    let grid: Vec<f64> = (0..=10).map(|i| f64::from(i) / 10.0).collect();
    let mut out = Vec::new();
    for (key, window) in pass.windows.iter_mut() {
        let x = &mut window.columns[1];
        let Sketch::Numeric(n) = &mut x.sketch else { panic!("x is numeric") };
        let q: Vec<String> = n.quantiles(&grid).iter().map(|v| format!("{v:.3}")).collect();
        out.push(format!(
            "{} {:?} rows={} mean={:.9} sd={:.9} min={} max={} q={} distinct={}",
            key.start,
            key.slice,
            window.rows,
            n.mean,
            n.stddev().unwrap_or_default(),
            n.min,
            n.max,
            q.join(","),
            n.distinct.estimate()
        ));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appended_files_merged_into_kept_windows_equal_a_full_read() {
    let dir = std::env::temp_dir().join(format!("tarn-monitor-incremental-{}", std::process::id()));
    _ = std::fs::remove_dir_all(&dir);
    let table = tarn_lake::managed::open_table(&dir.to_string_lossy()).await.unwrap();
    // Days 0-2, then the rest of day 2 and days 3-4: one window gets rows from both commits.
    let table = table.write(vec![rows(0, 60)]).await.unwrap();
    let first_version = table.version().unwrap() as i64;
    let slices = vec![SliceSet { text: "kind".into(), allowed: [Some("a".into()), Some("b".into())].into() }];
    let mut kept = profile(&table, None, &slices).await;
    let table = table.write(vec![rows(60, 60)]).await.unwrap();

    let files = match changes::since(&table, first_version, table.version().unwrap() as i64).await {
        Changes::Appended(files) => files,
        Changes::Rewritten(why) => panic!("an append read as a rewrite: {why}"),
    };
    assert!(!files.is_empty());
    let new = profile(&table, Some(files), &slices).await;
    let touched = kept.merge(new).unwrap();
    assert_eq!(touched.iter().filter(|k| k.slice.is_none()).count(), 3, "days 2, 3 and 4");
    let mut whole = profile(&table, None, &slices).await;
    assert_eq!(whole.windows.len(), 15, "five days, each whole and in two slices");
    assert_eq!(summary(&mut kept), summary(&mut whole));

    // A DELETE removes files: not an append.
    let before = table.version().unwrap() as i64;
    let (table, _) = table.delete().with_predicate("x > 50").await.unwrap();
    let after = table.version().unwrap() as i64;
    assert!(matches!(changes::since(&table, before, after).await, Changes::Rewritten(_)));
    _ = std::fs::remove_dir_all(&dir);
}
