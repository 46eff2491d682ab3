//! SQL pipeline definitions as Databricks' documentation writes them, read
//! into the graph; and queries rewritten for execution.

use serde_json::{Map, Value, json};
use tarn_pipelines::graph::{
    Action, Cdc, Dataset, DatasetKind, Definitions, Expectation, FileSource, Flow, Input, Location, Query,
};
use tarn_pipelines::sql::{definitions, rewrite_references, settings};

const PIPELINE: &str = "\
-- Bronze: raw orders as they land. Not a dependency: STREAM(ignored_in_comment)
SET pipelines.trigger.interval = '1 hour';

CREATE OR REFRESH STREAMING TABLE orders_bronze
COMMENT 'Raw orders from the landing volume'
TBLPROPERTIES ('quality' = 'bronze', delta.enableChangeDataFeed = true)
AS SELECT *, _metadata.file_path AS source_file
FROM STREAM read_files(
  '/Volumes/main/raw/landing',
  format => 'json',
  inferColumnTypes => true,
  schemaHints => 'amount DECIMAL(10,2)'
);

CREATE OR REFRESH STREAMING TABLE orders_silver (
  CONSTRAINT valid_id EXPECT (order_id IS NOT NULL) ON VIOLATION DROP ROW,
  CONSTRAINT positive_amount EXPECT (amount > 0) ON VIOLATION FAIL UPDATE,
  CONSTRAINT recent EXPECT (order_date >= '2020-01-01')
)
PARTITIONED BY (order_date)
AS SELECT order_id, customer_id, CAST(amount AS DECIMAL(10, 2)) AS amount, order_date
FROM STREAM(LIVE.orders_bronze) /* not STREAM(other) */
WHERE status <> 'STREAM(x)';

CREATE OR REFRESH MATERIALIZED VIEW `daily_revenue` (
  order_date DATE COMMENT 'day',
  revenue DECIMAL(20, 2),
  CONSTRAINT has_revenue EXPECT (revenue IS NOT NULL)
)
CLUSTER BY (order_date)
AS SELECT o.order_date, SUM(o.amount) AS revenue
FROM LIVE.orders_silver o
JOIN main.ref.calendar c ON c.day = o.order_date
GROUP BY o.order_date;
";

fn sql_location(line: u32) -> Location {
    Location { path: "transformations/orders.sql".into(), line: Some(line) }
}

fn read(text: &str) -> Definitions {
    definitions("transformations/orders.sql", text, 1)
}

fn dataset(name: &str, kind: DatasetKind, line: u32) -> Dataset {
    Dataset {
        name: name.into(),
        kind,
        comment: None,
        table_properties: Map::new(),
        partition_cols: vec![],
        cluster_by: vec![],
        schema: None,
        expectations: vec![],
        location: sql_location(line),
    }
}

fn flow(name: &str, query: &str, inputs: &[(&str, bool)], line: u32) -> Flow {
    Flow {
        name: name.into(),
        target: name.into(),
        query: Some(Query::Sql(query.into())),
        inputs: inputs
            .iter()
            .map(|(name, streaming)| Input { name: (*name).into(), streaming: *streaming, skip_change_commits: false })
            .collect(),
        sources: vec![],
        once: false,
        cdc: None,
        location: sql_location(line),
    }
}

fn expectation(name: &str, condition: &str, action: Action) -> Expectation {
    Expectation { name: name.into(), condition: condition.into(), action }
}

/// The one error of `text`: its message and line.
fn error(text: &str) -> (String, u32) {
    let defs = read(text);
    assert_eq!(defs.errors.len(), 1, "{defs:#?}");
    let e = &defs.errors[0];
    assert_eq!(e.class.as_deref(), Some("ParseException"));
    let location = e.location.clone().unwrap_or_default();
    assert_eq!(location.path, "transformations/orders.sql");
    (e.message.clone(), location.line.unwrap_or_default())
}

#[test]
fn bronze_silver_gold() {
    let defs = read(PIPELINE);
    assert_eq!(defs.errors, vec![]);

    let mut bronze = dataset("orders_bronze", DatasetKind::StreamingTable, 4);
    bronze.comment = Some("Raw orders from the landing volume".into());
    bronze.table_properties =
        json!({"quality": "bronze", "delta.enableChangeDataFeed": "true"}).as_object().cloned().unwrap_or_default();
    let mut silver = dataset("orders_silver", DatasetKind::StreamingTable, 15);
    silver.partition_cols = vec!["order_date".into()];
    silver.expectations = vec![
        expectation("valid_id", "order_id IS NOT NULL", Action::Drop),
        expectation("positive_amount", "amount > 0", Action::Fail),
        expectation("recent", "order_date >= '2020-01-01'", Action::Warn),
    ];
    let mut gold = dataset("daily_revenue", DatasetKind::MaterializedView, 25);
    gold.schema = Some("order_date DATE COMMENT 'day', revenue DECIMAL(20, 2)".into());
    gold.cluster_by = vec!["order_date".into()];
    gold.expectations = vec![expectation("has_revenue", "revenue IS NOT NULL", Action::Warn)];
    assert_eq!(defs.datasets, vec![bronze, silver, gold]);

    let mut bronze = flow(
        "orders_bronze",
        "SELECT *, _metadata.file_path AS source_file\nFROM STREAM read_files(\n  '/Volumes/main/raw/landing',\n  \
         format => 'json',\n  inferColumnTypes => true,\n  schemaHints => 'amount DECIMAL(10,2)'\n)",
        &[],
        4,
    );
    bronze.sources = vec![FileSource {
        path: "/Volumes/main/raw/landing".into(),
        format: "json".into(),
        options: json!({"cloudFiles.inferColumnTypes": "true", "cloudFiles.schemaHints": "amount DECIMAL(10,2)"})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        view: Some("__tarn_files__orders_bronze_0".into()),
        ..FileSource::default()
    }];
    let silver = flow(
        "orders_silver",
        "SELECT order_id, customer_id, CAST(amount AS DECIMAL(10, 2)) AS amount, order_date\n\
         FROM STREAM(LIVE.orders_bronze) /* not STREAM(other) */\nWHERE status <> 'STREAM(x)'",
        &[("orders_bronze", true)],
        15,
    );
    let gold = flow(
        "daily_revenue",
        "SELECT o.order_date, SUM(o.amount) AS revenue\nFROM LIVE.orders_silver o\n\
         JOIN main.ref.calendar c ON c.day = o.order_date\nGROUP BY o.order_date",
        &[("orders_silver", false), ("main.ref.calendar", false)],
        25,
    );
    assert_eq!(defs.flows, vec![bronze, silver, gold]);
    assert_eq!(settings(PIPELINE), vec![("pipelines.trigger.interval".to_string(), "1 hour".to_string())]);
}

#[test]
fn flows_into_a_query_less_streaming_table() {
    let text = "CREATE STREAMING TABLE all_orders;\n\
                CREATE FLOW us_orders AS INSERT INTO all_orders BY NAME SELECT * FROM STREAM(us.orders);\n\
                CREATE FLOW backfill\nAS INSERT INTO ONCE all_orders BY NAME\nSELECT * FROM archive.orders_2019, archive.orders_2020 a";
    let defs = read(text);
    assert_eq!(defs.errors, vec![]);
    assert_eq!(defs.datasets, vec![dataset("all_orders", DatasetKind::StreamingTable, 1)]);
    let mut us = flow("us_orders", "SELECT * FROM STREAM(us.orders)", &[("us.orders", true)], 2);
    us.target = "all_orders".into();
    let mut backfill = flow(
        "backfill",
        "SELECT * FROM archive.orders_2019, archive.orders_2020 a",
        &[("archive.orders_2019", false), ("archive.orders_2020", false)],
        3,
    );
    backfill.target = "all_orders".into();
    backfill.once = true;
    assert_eq!(defs.flows, vec![us, backfill]);
}

fn scd2_cdc(source: &str) -> Cdc {
    Cdc {
        source: source.into(),
        keys: vec!["userId".into()],
        sequence_by: "sequenceNum".into(),
        apply_as_deletes: Some("operation = 'DELETE'".into()),
        apply_as_truncates: None,
        column_list: None,
        except_column_list: Some(vec!["operation".into(), "sequenceNum".into()]),
        stored_as_scd_type: 2,
        track_history_column_list: None,
        track_history_except_column_list: Some(vec!["city".into()]),
        ignore_null_updates: false,
    }
}

fn cdc_flow(name: &str, target: &str, cdc: Cdc, line: u32) -> Flow {
    Flow {
        name: name.into(),
        target: target.into(),
        query: None,
        inputs: vec![Input { name: cdc.source.clone(), streaming: true, skip_change_commits: false }],
        sources: vec![],
        once: false,
        cdc: Some(cdc),
        location: sql_location(line),
    }
}

#[test]
fn auto_cdc_forms() {
    let clauses = "KEYS (userId)\n  APPLY AS DELETE WHEN operation = 'DELETE'\n  SEQUENCE BY sequenceNum\n  \
                   COLUMNS * EXCEPT (operation, sequenceNum)\n  STORED AS SCD TYPE 2\n  TRACK HISTORY ON * EXCEPT (city)";
    let text = format!(
        "CREATE OR REFRESH STREAMING TABLE users;\n\
         CREATE FLOW users_cdc AS AUTO CDC INTO users\n  FROM STREAM(users_raw)\n  {clauses};\n\
         APPLY CHANGES INTO LIVE.users_legacy\n  FROM STREAM(LIVE.users_raw)\n  {clauses};\n\
         CREATE OR REFRESH STREAMING TABLE users_standalone\nFLOW AUTO CDC\n  FROM STREAM users_raw\n  {clauses};"
    );
    let defs = read(&text);
    assert_eq!(defs.errors, vec![]);
    assert_eq!(
        defs.datasets,
        vec![
            dataset("users", DatasetKind::StreamingTable, 1),
            dataset("users_standalone", DatasetKind::StreamingTable, 18)
        ]
    );
    assert_eq!(
        defs.flows,
        vec![
            cdc_flow("users_cdc", "users", scd2_cdc("users_raw"), 2),
            cdc_flow("users_legacy", "users_legacy", scd2_cdc("users_raw"), 10),
            cdc_flow("users_standalone", "users_standalone", scd2_cdc("users_raw"), 18),
        ]
    );
}

#[test]
fn auto_cdc_defaults_and_column_lists() {
    let defs = read(
        "CREATE FLOW f AS AUTO CDC ONCE INTO t FROM STREAM(s) KEYS (a, `b c`) IGNORE NULL UPDATES\n\
         APPLY AS TRUNCATE WHEN op = 'TRUNCATE' SEQUENCE BY struct(ts, id) COLUMNS a, `b c`, v",
    );
    assert_eq!(defs.errors, vec![]);
    let cdc = Cdc {
        source: "s".into(),
        keys: vec!["a".into(), "`b c`".into()],
        sequence_by: "struct(ts, id)".into(),
        apply_as_deletes: None,
        apply_as_truncates: Some("op = 'TRUNCATE'".into()),
        column_list: Some(vec!["a".into(), "`b c`".into(), "v".into()]),
        except_column_list: None,
        stored_as_scd_type: 1,
        track_history_column_list: None,
        track_history_except_column_list: None,
        ignore_null_updates: true,
    };
    assert_eq!(defs.flows, vec![Flow { once: true, ..cdc_flow("f", "t", cdc, 1) }]);
}

#[test]
fn views_and_legacy_tables() {
    let defs = read(
        "CREATE TEMPORARY LIVE VIEW clean_events (CONSTRAINT has_ts EXPECT (ts IS NOT NULL) ON VIOLATION DROP ROW)\n\
         COMMENT 'events with a time' AS SELECT * FROM LIVE.events;\n\
         create live table events as select * from cloud_files('/data/events', 'json', map('cloudFiles.inferColumnTypes', 'true'));\n\
         CREATE LIVE TABLE event_counts AS SELECT count(*) FROM LIVE.clean_events;\n\
         CREATE STREAMING LIVE TABLE raw;\n\
         CREATE VIEW `main`.`gold`.`raw-copy` AS SELECT * FROM raw -- a copy\n",
    );
    assert_eq!(defs.errors, vec![]);
    let kinds: Vec<_> = defs.datasets.iter().map(|d| (d.name.as_str(), d.kind, d.location.line)).collect();
    assert_eq!(
        kinds,
        [
            ("clean_events", DatasetKind::View, Some(1)),
            ("events", DatasetKind::StreamingTable, Some(3)),
            ("event_counts", DatasetKind::MaterializedView, Some(4)),
            ("raw", DatasetKind::StreamingTable, Some(5)),
            ("main.gold.`raw-copy`", DatasetKind::View, Some(6)),
        ]
    );
    assert_eq!(defs.datasets[0].comment.as_deref(), Some("events with a time"));
    assert_eq!(defs.datasets[0].expectations, vec![expectation("has_ts", "ts IS NOT NULL", Action::Drop)]);
    assert_eq!(defs.datasets[0].schema, None);
    let mut options = Map::new();
    options.insert("cloudFiles.inferColumnTypes".into(), Value::String("true".into()));
    let events = FileSource {
        path: "/data/events".into(),
        format: "json".into(),
        options,
        view: Some("__tarn_files__events_0".into()),
        ..FileSource::default()
    };
    assert_eq!(defs.flows[1].sources, vec![events]);
    assert_eq!(defs.flows.len(), 4);
    assert_eq!(defs.flows[3].query, Some(Query::Sql("SELECT * FROM raw".into())));
    assert_eq!(defs.flows[3].inputs, vec![Input { name: "raw".into(), streaming: false, skip_change_commits: false }]);
}

#[test]
fn names_in_strings_comments_and_functions_are_not_inputs() {
    let defs = read(
        "CREATE MATERIALIZED VIEW m AS\n\
         WITH recent AS (SELECT * FROM LIVE.a WHERE note = 'FROM b'), -- FROM c\n\
         older AS (SELECT * FROM d)\n\
         SELECT EXTRACT(YEAR FROM ts) AS y, TRIM(BOTH ' ' FROM name) AS n, x IS DISTINCT FROM y AS changed\n\
         FROM recent JOIN older USING (id) LEFT JOIN (SELECT id FROM e) USING (id)\n\
         WHERE id IN (SELECT id FROM STREAM(f)) AND id NOT IN (SELECT id FROM range(10))",
    );
    assert_eq!(defs.errors, vec![]);
    let inputs: Vec<_> = defs.flows[0].inputs.iter().map(|i| (i.name.as_str(), i.streaming)).collect();
    assert_eq!(inputs, [("a", false), ("d", false), ("e", false), ("f", true)]);
}

#[test]
fn syntax_errors_name_the_line_and_what_was_expected() {
    let (message, line) =
        error("CREATE MATERIALIZED VIEW ok AS SELECT 1;\n\n-- the next one is a typo\nSELCT * FROM x;");
    assert_eq!(line, 4);
    assert!(message.starts_with("expected CREATE MATERIALIZED VIEW"), "{message}");
    assert!(message.ends_with("found 'SELCT'"), "{message}");

    let (message, line) = error("CREATE MATERIALIZED VIEW m\nCOMMENT 'no query'");
    assert_eq!(
        (message.as_str(), line),
        ("expected COMMENT, PARTITIONED BY, CLUSTER BY, TBLPROPERTIES or AS, found end of statement", 2)
    );

    let (message, line) =
        error("CREATE STREAMING TABLE t (\n  CONSTRAINT c EXPECT (x > 0)\n    ON VIOLATION DELETE ROW\n) AS SELECT 1");
    assert_eq!((message.as_str(), line), ("expected DROP ROW or FAIL UPDATE, found 'DELETE'", 3));

    let (message, line) = error("CREATE STREAMING TABLE t (\n  id INT\nAS SELECT 1");
    assert_eq!((message.as_str(), line), ("unbalanced parentheses: '(' is never closed", 1));

    let (message, line) = error("CREATE FLOW f AS INSERT INTO t SELECT 1");
    assert_eq!((message.as_str(), line), ("expected BY NAME, found 'SELECT'", 1));

    let (message, line) = error("CREATE FLOW f AS AUTO CDC INTO t FROM s KEYS (id)\nSTORED AS SCD TYPE 2");
    assert_eq!((message.as_str(), line), ("expected SEQUENCE BY, found end of statement", 2));

    let (message, line) = error("CREATE FLOW f AS AUTO CDC INTO t FROM s\nKEYS ()\nSEQUENCE BY ts");
    assert_eq!((message.as_str(), line), ("expected a list item, found ')'", 2));

    let (message, line) =
        error("CREATE STREAMING TABLE t AS\nSELECT * FROM STREAM read_files(\n  ${path}, format => 'csv')");
    assert_eq!((message.as_str(), line), ("expected a quoted string, found '$'", 3));

    let (message, _) = error("USE CATALOG main");
    assert!(message.starts_with("USE and SET CATALOG/SCHEMA are not supported"), "{message}");

    let (message, line) = error("CREATE MATERIALIZED VIEW m AS SELECT 'unclosed");
    assert_eq!((message.as_str(), line), ("unterminated string", 1));
}

#[test]
fn notebook_cells_count_lines_from_their_first() {
    let defs = definitions("etl/notebook", "\n  CREATE MATERIALIZED VIEW m AS SELECT 1;\nbad", 41);
    assert_eq!(defs.datasets[0].location, Location { path: "etl/notebook".into(), line: Some(42) });
    assert_eq!(defs.errors[0].location, Some(Location { path: "etl/notebook".into(), line: Some(43) }));
}

#[test]
fn settings_are_read_and_define_nothing() {
    let text = "SET spark.sql.shuffle.partitions = 4;\nSET `my.key`='a;b';\nSET -v;\nSET x";
    assert!(read(text).errors.is_empty());
    assert_eq!(
        settings(text),
        vec![("spark.sql.shuffle.partitions".to_string(), "4".to_string()), ("my.key".to_string(), "a;b".to_string())]
    );
}

fn resolve(name: &str) -> Option<String> {
    ["orders", "customers", "events"].contains(&name).then(|| format!("main.sales.{name}"))
}

fn stream(name: &str) -> Option<String> {
    (name == "events").then(|| "tarn_pipeline_3.events__new_rows".to_string())
}

#[test]
fn rewrite_replaces_references_and_nothing_else() {
    let cases = [
        (
            "SELECT * FROM LIVE.orders o /* LIVE.orders */ JOIN customers c ON o.cid = c.id WHERE note = 'FROM orders'",
            "SELECT * FROM main.sales.orders o /* LIVE.orders */ JOIN main.sales.customers c ON o.cid = c.id WHERE note = 'FROM orders'",
        ),
        ("SELECT * FROM STREAM(LIVE.events)", "SELECT * FROM tarn_pipeline_3.events__new_rows"),
        ("SELECT * FROM STREAM  events e", "SELECT * FROM tarn_pipeline_3.events__new_rows e"),
        ("SELECT * FROM STREAM(orders)", "SELECT * FROM main.sales.orders"),
        ("SELECT * FROM STREAM( other.t ), unknown", "SELECT * FROM other.t, unknown"),
        (
            "SELECT orders FROM t WHERE x IN (SELECT y FROM\n  orders)",
            "SELECT orders FROM t WHERE x IN (SELECT y FROM\n  main.sales.orders)",
        ),
        ("WITH orders AS (SELECT 1) SELECT * FROM orders", "WITH orders AS (SELECT 1) SELECT * FROM orders"),
        (
            "SELECT * FROM STREAM read_files('/v', format => 'csv')",
            "SELECT * FROM STREAM read_files('/v', format => 'csv')",
        ),
        ("SELECT 'unclosed FROM orders", "SELECT 'unclosed FROM orders"),
    ];
    for (query, expected) in cases {
        assert_eq!(rewrite_references(query, &resolve, &stream, &|_| None), expected, "{query}");
    }
}

#[test]
fn every_prefix_reads_without_panicking() {
    let text = format!(
        "{PIPELINE}\nCREATE FLOW f AS AUTO CDC INTO t FROM STREAM(LIVE.s) KEYS (id) APPLY AS DELETE WHEN op = 'D' \
         SEQUENCE BY ts COLUMNS * EXCEPT (op) STORED AS SCD TYPE 2 TRACK HISTORY ON (a, b);\n\
         CREATE VIEW v AS SELECT * FROM cloud_files('/p', 'csv', map('header', 'true')) JOIN STREAM `x`;"
    );
    for (end, _) in text.char_indices() {
        let prefix = &text[..end];
        let defs = read(prefix);
        assert!(defs.datasets.len() + defs.flows.len() + defs.errors.len() <= 12, "{prefix}");
        rewrite_references(prefix, &resolve, &stream, &|_| None);
    }
}
