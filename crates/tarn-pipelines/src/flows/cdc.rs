//! AUTO CDC (`apply_changes`): the SQL that turns a flow's change events
//! into its target's rows, as SCD type 1 (the latest row per key) or type 2
//! (every version of a key with `__START_AT` and `__END_AT`).
//!
//! The target is recomputed from every change the source holds, ordered by
//! `sequence_by`, so events that arrive out of order across updates land
//! where their sequence puts them, and replaying a batch gives the same
//! table. Deletes and truncates are flags computed from the change rows
//! before the output columns are chosen, so the columns they read (an
//! `operation` column, say) may be left out of the target.

use crate::graph::Cdc;
use tarn_sqltext::quote_identifier;

const SEQ: &str = "__tarn_seq";
const DELETE: &str = "__tarn_delete";
const TRUNCATE: &str = "__tarn_truncate";

/// The target's columns: `column_list`, or the source's less
/// `except_column_list`; the keys must be among them.
pub fn output_columns(cdc: &Cdc, source: &[String]) -> Result<Vec<String>, String> {
    let known = |c: &String| source.iter().any(|s| s.eq_ignore_ascii_case(c));
    let named = cdc.column_list.iter().flatten().chain(cdc.except_column_list.iter().flatten());
    if let Some(missing) = named.chain(&cdc.keys).find(|c| !known(c)) {
        return Err(format!(
            "AUTO CDC column '{missing}' is not a column of the source '{}' (its columns: {})",
            cdc.source,
            source.join(", ")
        ));
    }
    let columns: Vec<String> = match (&cdc.column_list, &cdc.except_column_list) {
        (Some(list), _) => list.clone(),
        (None, Some(except)) => {
            source.iter().filter(|c| !except.iter().any(|e| e.eq_ignore_ascii_case(c))).cloned().collect()
        }
        (None, None) => source.to_vec(),
    };
    let has = |k: &String| columns.iter().any(|c| c.eq_ignore_ascii_case(k));
    if let Some(key) = cdc.keys.iter().find(|k| !has(k)) {
        return Err(format!("AUTO CDC key '{key}' is left out of the target's columns"));
    }
    Ok(columns)
}

fn list(columns: &[String]) -> String {
    columns.iter().map(|c| quote_identifier(c)).collect::<Vec<_>>().join(", ")
}

/// The change rows with their sequence and delete/truncate flags; a NULL
/// condition is not a delete, as a `WHERE` would not take it.
fn flagged(cdc: &Cdc, changes_view: &str) -> String {
    let flag = |condition: &Option<String>| match condition {
        Some(c) => format!("COALESCE(({c}), false)"),
        None => "false".into(),
    };
    format!(
        "SELECT *, ({seq}) AS {SEQ}, {delete} AS {DELETE}, {truncate} AS {TRUNCATE} FROM {changes_view}",
        seq = cdc.sequence_by,
        delete = flag(&cdc.apply_as_deletes),
        truncate = flag(&cdc.apply_as_truncates),
    )
}

/// The query that computes the target from the view of all change rows.
pub fn target_query(cdc: &Cdc, changes_view: &str, source_columns: &[String]) -> Result<String, String> {
    if cdc.ignore_null_updates {
        return Err("AUTO CDC with IGNORE NULL UPDATES is not supported by tarn yet".into());
    }
    let columns = output_columns(cdc, source_columns)?;
    match cdc.stored_as_scd_type {
        1 => Ok(scd1(cdc, changes_view, &columns)),
        2 if cdc.apply_as_truncates.is_some() => {
            Err("APPLY AS TRUNCATE WHEN is only supported for SCD type 1 targets".into())
        }
        2 => scd2(cdc, changes_view, &columns),
        other => Err(format!("stored_as_scd_type must be 1 or 2, not {other}")),
    }
}

/// The latest change per key, unless it is a delete; a truncate removes
/// every change sequenced at or before it.
fn scd1(cdc: &Cdc, changes_view: &str, columns: &[String]) -> String {
    let keys = list(&cdc.keys);
    format!(
        "WITH c AS ({flagged}), \
         t AS (SELECT MAX({SEQ}) AS s FROM c WHERE {TRUNCATE}), \
         live AS (SELECT c.* FROM c CROSS JOIN t WHERE NOT c.{TRUNCATE} AND (t.s IS NULL OR c.{SEQ} > t.s)), \
         ranked AS (SELECT *, ROW_NUMBER() OVER (PARTITION BY {keys} ORDER BY {SEQ} DESC, {DELETE} DESC) AS __tarn_rank \
         FROM live) \
         SELECT {out} FROM ranked WHERE __tarn_rank = 1 AND NOT {DELETE}",
        flagged = flagged(cdc, changes_view),
        out = list(columns),
    )
}

/// The columns whose change opens a new version: the tracked ones, the
/// keys never among them.
fn tracked(cdc: &Cdc, columns: &[String]) -> Result<Vec<String>, String> {
    let is_key = |c: &String| cdc.keys.iter().any(|k| k.eq_ignore_ascii_case(c));
    let has = |list: &[String], c: &String| list.iter().any(|x| x.eq_ignore_ascii_case(c));
    let out: Vec<String> = match (&cdc.track_history_column_list, &cdc.track_history_except_column_list) {
        (Some(list), _) => {
            if let Some(missing) = list.iter().find(|c| !has(columns, c)) {
                return Err(format!("TRACK HISTORY column '{missing}' is not a column of the target"));
            }
            list.clone()
        }
        (None, Some(except)) => columns.iter().filter(|c| !has(except, c)).cloned().collect(),
        (None, None) => columns.to_vec(),
    };
    Ok(out.into_iter().filter(|c| !is_key(c)).collect())
}

/// Every version of each key: a row opens a version when it follows a
/// delete or a tracked column changed (a change in an untracked column
/// updates the open version in place); the next version's start, or the
/// delete, ends it.
fn scd2(cdc: &Cdc, changes_view: &str, columns: &[String]) -> Result<String, String> {
    let keys = list(&cdc.keys);
    let tracked = tracked(cdc, columns)?;
    let by_key = format!("PARTITION BY {keys} ORDER BY {SEQ}");
    let previous: Vec<String> = tracked
        .iter()
        .enumerate()
        .map(|(i, c)| format!("LAG({}) OVER ({by_key}) AS __tarn_prev_{i}", quote_identifier(c)))
        .collect();
    let changed: Vec<String> =
        tracked.iter().enumerate().map(|(i, c)| format!("NOT ({} <=> __tarn_prev_{i})", quote_identifier(c))).collect();
    let opens = std::iter::once(format!("__tarn_prev_delete IS NULL OR __tarn_prev_delete OR {DELETE}"))
        .chain(changed)
        .collect::<Vec<_>>()
        .join(" OR ");
    let lags = std::iter::once(format!("LAG({DELETE}) OVER ({by_key}) AS __tarn_prev_delete"))
        .chain(previous)
        .collect::<Vec<_>>()
        .join(", ");
    Ok(format!(
        "WITH c AS ({flagged}), \
         d AS (SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY {keys}, {SEQ} ORDER BY {DELETE} DESC) \
         AS __tarn_dup FROM c) WHERE __tarn_dup = 1), \
         n AS (SELECT *, {lags} FROM d), \
         g AS (SELECT *, SUM(CASE WHEN {opens} THEN 1 ELSE 0 END) OVER ({by_key} ROWS BETWEEN UNBOUNDED PRECEDING \
         AND CURRENT ROW) AS __tarn_version FROM n), \
         v AS (SELECT *, MIN({SEQ}) OVER (PARTITION BY {keys}, __tarn_version) AS __tarn_start, \
         ROW_NUMBER() OVER (PARTITION BY {keys}, __tarn_version ORDER BY {SEQ} DESC) AS __tarn_last FROM g), \
         e AS (SELECT *, LEAD(__tarn_start) OVER (PARTITION BY {keys} ORDER BY __tarn_start) AS __tarn_end \
         FROM v WHERE __tarn_last = 1) \
         SELECT {out}, __tarn_start AS __START_AT, __tarn_end AS __END_AT FROM e WHERE NOT {DELETE}",
        flagged = flagged(cdc, changes_view),
        out = list(columns),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cdc(keys: &[&str]) -> Cdc {
        Cdc {
            source: "changes".into(),
            keys: keys.iter().map(|k| k.to_string()).collect(),
            sequence_by: "seq".into(),
            apply_as_deletes: Some("op = 'DELETE'".into()),
            apply_as_truncates: None,
            column_list: None,
            except_column_list: Some(vec!["op".into()]),
            stored_as_scd_type: 1,
            track_history_column_list: None,
            track_history_except_column_list: None,
            ignore_null_updates: false,
        }
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn except_columns_leave_the_operation_out_and_keys_must_stay() {
        let source = names(&["id", "name", "op", "seq"]);
        assert_eq!(output_columns(&cdc(&["id"]), &source).unwrap(), names(&["id", "name", "seq"]));
        let mut without_key = cdc(&["id"]);
        without_key.except_column_list = Some(names(&["id"]));
        assert!(output_columns(&without_key, &source).unwrap_err().contains("key 'id'"));
        let unknown = output_columns(&cdc(&["nope"]), &source).unwrap_err();
        assert!(unknown.contains("'nope'") && unknown.contains("id, name, op, seq"), "{unknown}");
    }

    #[test]
    fn scd2_refuses_truncates_and_tracks_named_columns_only() {
        let mut two = cdc(&["id"]);
        two.stored_as_scd_type = 2;
        two.apply_as_truncates = Some("op = 'TRUNCATE'".into());
        assert!(target_query(&two, "v", &names(&["id", "op", "seq"])).is_err());
        two.apply_as_truncates = None;
        two.track_history_column_list = Some(names(&["name"]));
        let sql = target_query(&two, "v", &names(&["id", "name", "op", "seq"])).unwrap();
        assert!(sql.contains("LAG(`name`)") && !sql.contains("LAG(`seq`)"), "{sql}");
    }
}
