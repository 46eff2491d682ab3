use std::collections::HashMap;
use std::sync::Mutex;

use spark_connect_proto::{DataType, data_type};

use super::*;
use crate::passes::EngineFuture;

/// Views by full name (lower case); names resolve in the namespace given.
#[derive(Default)]
struct Views {
    views: HashMap<String, ViewDefinition>,
    created: Mutex<Vec<NewView>>,
}

fn full(name: &[String], namespace: &[String]) -> String {
    let missing = 3usize.saturating_sub(name.len());
    namespace.iter().take(missing).chain(name).cloned().collect::<Vec<_>>().join(".").to_lowercase()
}

impl Views {
    fn with(mut self, full_name: &str, query: &str, namespace: &str, columns: &[&str]) -> Self {
        let view = ViewDefinition {
            full_name: full_name.split('.').map(str::to_string).collect(),
            query: query.into(),
            namespace: namespace.split('.').map(str::to_string).collect(),
            column_names: columns.iter().map(|c| (*c).to_string()).collect(),
        };
        self.views.insert(full_name.into(), view);
        self
    }
}

impl ViewCatalog for Views {
    fn view(&self, name: &[String], namespace: &[String]) -> Option<ViewDefinition> {
        self.views.get(&full(name, namespace)).cloned()
    }

    fn create(&self, _user: &str, view: &NewView) -> Result<Vec<u8>, SqlFailure> {
        self.created.lock().unwrap().push(view.clone());
        Ok(b"created".to_vec())
    }

    fn drop(&self, _user: &str, name: &[String], namespace: &[String], _: bool) -> Result<Vec<u8>, SqlFailure> {
        Ok(full(name, namespace).into_bytes())
    }

    fn set_properties(
        &self,
        _: &str,
        _: &[String],
        _: &[String],
        _: &[(String, String)],
    ) -> Result<Vec<u8>, SqlFailure> {
        Ok(b"set".to_vec())
    }

    fn show(&self, _: &str, _: Option<&[String]>, _: &[String], _: Option<&str>) -> Result<Vec<u8>, SqlFailure> {
        Ok(b"shown".to_vec())
    }
}

/// An engine that describes every query as (id BIGINT, name STRING).
#[derive(Default)]
struct Engine {
    analysed: Mutex<Vec<String>>,
}

impl EngineCalls for Engine {
    fn analyze_schema(&self, query: Relation) -> EngineFuture<'_, Option<DataType>> {
        if let Some(relation::RelType::Sql(sql)) = query.rel_type {
            self.analysed.lock().unwrap().push(sql.query);
        }
        let field = |name: &str, kind| data_type::StructField {
            name: name.into(),
            data_type: Some(DataType { kind: Some(kind) }),
            nullable: true,
            ..Default::default()
        };
        let fields = vec![
            field("id", data_type::Kind::Long(Default::default())),
            field("name", data_type::Kind::String(Default::default())),
        ];
        let schema =
            DataType { kind: Some(data_type::Kind::Struct(data_type::Struct { fields, ..Default::default() })) };
        Box::pin(async move { Ok(Some(schema)) })
    }

    fn run_sql(&self, _sql: String) -> EngineFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }
}

fn ns() -> Vec<String> {
    vec!["main".into(), "shop".into()]
}

fn expanded(views: &Views, sql: &str) -> Option<String> {
    expand(views, sql, &ns(), &[]).unwrap()
}

#[test]
fn names_are_found_where_they_are_written() {
    let sql = "SELECT *\nFROM `main`.`shop`.`a` x JOIN b ON x.id = b.id, `é`.c -- `d`\nWHERE id IN (SELECT 'ü' FROM e)";
    let found: Vec<&str> = references(sql).unwrap().iter().map(|r| &sql[r.range.clone()]).collect();
    assert_eq!(found, ["`main`.`shop`.`a`", "b", "`é`.c", "e"]);
    let with = "WITH a AS (SELECT 1) SELECT * FROM a, b";
    let names: Vec<Name> = references(with).unwrap().into_iter().map(|r| r.name).collect();
    assert_eq!(names, [vec!["b".to_string()]]);
}

#[test]
fn a_view_read_becomes_its_query_with_names_qualified() {
    let views =
        Views::default().with("main.shop.gold", "select id from customers where tier = 'gold'", "main.shop", &[]);
    assert_eq!(
        expanded(&views, "SELECT * FROM gold g JOIN orders o USING (id)").unwrap(),
        "SELECT * FROM (\nselect id from `main`.`shop`.`customers` where tier = 'gold'\n) g JOIN orders o USING (id)"
    );
    assert_eq!(
        expanded(&views, "SELECT count(*) FROM main.shop.gold").unwrap(),
        "SELECT count(*) FROM (\nselect id from `main`.`shop`.`customers` where tier = 'gold'\n) AS `gold`"
    );
    assert_eq!(expanded(&views, "SELECT * FROM customers"), None);
    assert_eq!(expanded(&views, "SELECT * FROM gold WHERE"), None, "text sqlparser cannot read is left alone");
}

#[test]
fn views_of_views_resolve_in_their_own_namespace() {
    let views = Views::default().with("main.shop.gold", "SELECT * FROM customers", "main.shop", &[]).with(
        "main.report.top",
        "SELECT id FROM shop.gold -- the best\n",
        "main.report",
        &["customer"],
    );
    let sql = expand(&views, "SELECT * FROM top", &["main".into(), "report".into()], &[]).unwrap().unwrap();
    assert_eq!(
        sql,
        "SELECT * FROM (\nSELECT * FROM (\nSELECT id FROM (\nSELECT * FROM `main`.`shop`.`customers`\n) AS `gold` \
         -- the best\n\n) AS `top`(`customer`)\n) AS `top`"
    );
}

#[test]
fn a_view_reading_itself_is_refused() {
    let views = Views::default().with("main.shop.loop", "SELECT * FROM loop", "main.shop", &[]);
    let e = expand(&views, "SELECT * FROM loop", &ns(), &[]).unwrap_err();
    assert!(e.message.contains("RECURSIVE_VIEW"), "{}", e.message);
    // Replacing a view with a query that reads it through another view.
    let views = Views::default().with("main.shop.a", "SELECT * FROM orders", "main.shop", &[]).with(
        "main.shop.b",
        "SELECT * FROM a",
        "main.shop",
        &[],
    );
    let engine = Engine::default();
    let namespace = ns();
    let cycle = futures_util::FutureExt::now_or_never(prepare(
        &engine,
        scope(&views, &namespace),
        "CREATE OR REPLACE VIEW a AS SELECT * FROM b",
    ));
    assert!(cycle.unwrap().unwrap_err().message.contains("RECURSIVE_VIEW"));
}

#[test]
fn spark_table_reads_of_views_become_sql() {
    let views = Views::default().with("main.shop.gold", "SELECT 1 AS id", "main.shop", &[]);
    let read = |name: &str| Relation {
        common: None,
        rel_type: Some(relation::RelType::Read(spark_connect_proto::Read {
            read_type: Some(spark_connect_proto::read::ReadType::NamedTable(spark_connect_proto::read::NamedTable {
                unparsed_identifier: name.into(),
                ..Default::default()
            })),
            ..Default::default()
        })),
    };
    let mut plain = read("customers");
    assert!(!expand_reads(&views, &mut plain, &ns(), &same).unwrap());
    let mut limited = Relation {
        common: None,
        rel_type: Some(relation::RelType::Limit(Box::new(spark_connect_proto::Limit {
            input: Some(Box::new(read("shop.gold"))),
            limit: 5,
        }))),
    };
    assert!(expand_reads(&views, &mut limited, &ns(), &same).unwrap());
    let Some(relation::RelType::Limit(limit)) = &limited.rel_type else { panic!() };
    let Some(relation::RelType::Sql(sql)) = limit.input.as_ref().and_then(|r| r.rel_type.as_ref()) else { panic!() };
    assert_eq!(sql.query, "SELECT * FROM (\nSELECT 1 AS id\n) AS `gold`");
}

fn same(text: &str) -> Result<String, String> {
    Ok(text.to_string())
}

fn scope<'a>(views: &'a Views, namespace: &'a [String]) -> Scope<'a> {
    Scope { views, namespace, user: "ada", rewrite: &same }
}

#[tokio::test]
async fn create_view_is_analysed_and_kept_with_its_columns() {
    let namespace = ns();
    let views = Views::default().with("main.shop.gold", "SELECT * FROM customers", "main.shop", &[]);
    let engine = Engine::default();
    let sql = "CREATE OR REPLACE VIEW top (customer COMMENT 'who', label) COMMENT 'c' AS SELECT id, name FROM gold";
    let answer = prepare(&engine, scope(&views, &namespace), sql).await.unwrap();
    assert_eq!(answer, Prepared::Answered(b"created".to_vec()));
    assert_eq!(
        engine.analysed.lock().unwrap().as_slice(),
        ["SELECT id, name FROM (\nSELECT * FROM `main`.`shop`.`customers`\n) AS `gold`"]
    );
    let view = views.created.lock().unwrap()[0].clone();
    assert_eq!(
        (view.name.as_slice(), view.query.as_str()),
        (["top".to_string()].as_slice(), "SELECT id, name FROM gold")
    );
    assert_eq!(view.fields[0]["name"], "customer");
    assert_eq!(view.fields[0]["metadata"]["comment"], "who");
    assert_eq!(view.fields[1]["type"], "string");
    assert!(view.replace && view.comment.as_deref() == Some("c"));

    let wrong = prepare(&engine, scope(&views, &namespace), "CREATE VIEW v (a) AS SELECT id, name FROM t").await;
    assert!(wrong.unwrap_err().message.contains("CREATE_VIEW_COLUMN_ARITY_MISMATCH"));
    let dropped = prepare(&engine, scope(&views, &namespace), "DROP VIEW IF EXISTS gold").await.unwrap();
    assert_eq!(dropped, Prepared::Answered(b"main.shop.gold".to_vec()));
    let plain = prepare(&engine, scope(&views, &namespace), "SELECT 1").await.unwrap();
    assert_eq!(plain, Prepared::Unchanged);
}
