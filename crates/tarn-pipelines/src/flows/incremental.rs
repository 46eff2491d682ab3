//! Which materialized views refresh incrementally: those whose query only
//! projects and filters one stored dataset, row by row (no aggregate,
//! window, join, distinct, limit or nondeterministic function), so the
//! view over old rows plus the view over appended rows is the view over
//! all of them. Everything else is recomputed.
//!
//! Python queries are Spark Connect plans and are read node by node; SQL
//! queries are read on their tokens, conservatively: a word that could
//! change the answer sends the view to a full recompute.

use spark_connect_proto::expression::ExprType;
use spark_connect_proto::{Expression, Relation, read, relation};
use tarn_sqltext::{Kind, tokens};

use crate::graph::Query;

/// Functions over more than one row, or whose value is not the row's alone.
#[rustfmt::skip]
const NOT_ROW_BY_ROW: &[&str] = &[
    "count", "sum", "avg", "mean", "min", "max", "first", "last", "first_value", "last_value", "collect_list",
    "collect_set", "array_agg", "stddev", "stddev_pop", "stddev_samp", "std", "variance", "var_pop", "var_samp",
    "approx_count_distinct", "approx_percentile", "percentile", "percentile_approx", "percentile_cont",
    "percentile_disc", "count_distinct", "sum_distinct", "any_value", "any", "some", "every", "bool_and",
    "bool_or", "max_by", "min_by", "corr", "covar_pop", "covar_samp", "kurtosis", "skewness", "median", "mode",
    "grouping", "grouping_id", "string_agg", "listagg", "histogram_numeric", "bit_and", "bit_or", "bit_xor",
    "count_if", "count_min_sketch", "regr_avgx", "regr_avgy", "regr_count", "regr_intercept", "regr_r2",
    "regr_slope", "regr_sxx", "regr_sxy", "regr_syy", "try_avg", "try_sum", "hll_sketch_agg", "hll_union_agg",
    "row_number", "rank", "dense_rank", "percent_rank", "ntile", "cume_dist", "lag", "lead", "nth_value",
    "rand", "randn", "random", "uuid", "shuffle", "current_timestamp", "current_date", "now", "localtimestamp",
    "unix_timestamp", "monotonically_increasing_id", "spark_partition_id", "input_file_name", "current_user",
];

/// Words of a query that is not a plain projection and filter.
#[rustfmt::skip]
const NOT_PROJECTION: &[&str] = &[
    "GROUP", "HAVING", "JOIN", "DISTINCT", "UNION", "INTERSECT", "EXCEPT", "MINUS", "LIMIT", "OFFSET", "ORDER",
    "SORT", "CLUSTER", "DISTRIBUTE", "OVER", "WINDOW", "QUALIFY", "PIVOT", "UNPIVOT", "TABLESAMPLE", "LATERAL",
    "WITH", "VALUES", "STREAM", "TABLE",
];

fn row_by_row(function: &str) -> bool {
    !NOT_ROW_BY_ROW.iter().any(|f| f.eq_ignore_ascii_case(function))
}

/// The table name a query reads, when it only projects and filters it.
pub fn projected_table(query: &Query) -> Option<String> {
    match query {
        Query::Relation(plan) => {
            let relation = super::relation::decode(plan).ok()?;
            let mut reads = Vec::new();
            (plan_is_projection(&relation, &mut reads) && reads.len() == 1).then(|| reads.remove(0))
        }
        Query::Sql(text) => sql_projected_table(text),
    }
}

fn plan_is_projection(relation: &Relation, reads: &mut Vec<String>) -> bool {
    let input =
        |r: &Option<Box<Relation>>, reads: &mut Vec<String>| r.as_deref().is_some_and(|r| plan_is_projection(r, reads));
    match &relation.rel_type {
        Some(relation::RelType::Project(p)) => p.expressions.iter().all(expression_ok) && input(&p.input, reads),
        Some(relation::RelType::Filter(f)) => f.condition.as_ref().is_some_and(expression_ok) && input(&f.input, reads),
        Some(relation::RelType::WithColumns(w)) => {
            w.aliases.iter().all(|a| a.expr.as_deref().is_some_and(expression_ok)) && input(&w.input, reads)
        }
        Some(relation::RelType::SubqueryAlias(a)) => input(&a.input, reads),
        Some(relation::RelType::WithColumnsRenamed(r)) => input(&r.input, reads),
        Some(relation::RelType::Drop(d)) => input(&d.input, reads),
        Some(relation::RelType::ToDf(t)) => input(&t.input, reads),
        Some(relation::RelType::Read(r)) => match &r.read_type {
            Some(read::ReadType::NamedTable(t)) if !r.is_streaming => {
                reads.push(t.unparsed_identifier.clone());
                true
            }
            _ => false,
        },
        _ => false,
    }
}

fn expression_ok(e: &Expression) -> bool {
    match &e.expr_type {
        Some(ExprType::Literal(_) | ExprType::UnresolvedAttribute(_) | ExprType::UnresolvedStar(_)) => true,
        Some(ExprType::Alias(a)) => a.expr.as_deref().is_some_and(expression_ok),
        Some(ExprType::Cast(c)) => c.expr.as_deref().is_some_and(expression_ok),
        Some(ExprType::UnresolvedFunction(f)) => {
            !f.is_distinct && row_by_row(&f.function_name) && f.arguments.iter().all(expression_ok)
        }
        Some(ExprType::ExpressionString(s)) => sql_expression_ok(&s.expression),
        _ => false,
    }
}

/// The calls among `words` are all row by row, and no window is opened.
fn calls_ok(words: &[tarn_sqltext::Token<'_>]) -> bool {
    words.iter().enumerate().all(|(i, t)| {
        let call = t.kind == Kind::Word && words.get(i + 1).is_some_and(|n| n.is_punct('('));
        (!call || row_by_row(t.text)) && !t.is_word("OVER")
    })
}

/// An expression's text: row-by-row calls only, no subquery.
fn sql_expression_ok(text: &str) -> bool {
    let words: Vec<_> = tokens(text).filter(|t| !t.is_trivia()).collect();
    calls_ok(&words) && !words.iter().any(|t| t.is_word("SELECT"))
}

/// `SELECT row-by-row expressions FROM one_table [alias] [WHERE condition]`.
fn sql_projected_table(text: &str) -> Option<String> {
    let words: Vec<_> = tokens(text).filter(|t| !t.is_trivia()).collect();
    let one_select = words.first()?.is_word("SELECT") && words.iter().filter(|t| t.is_word("SELECT")).count() == 1;
    if !one_select || !calls_ok(&words) || words.iter().any(|t| NOT_PROJECTION.iter().any(|w| t.is_word(w))) {
        return None;
    }
    let from = words.iter().position(|t| t.is_word("FROM"))?;
    let mut name = String::new();
    let mut i = from + 1;
    while let Some(t) = words.get(i) {
        match t.kind {
            Kind::Word | Kind::QuotedIdentifier if name.is_empty() || name.ends_with('.') => name.push_str(t.text),
            Kind::Punct if t.text == "." && !name.is_empty() => name.push('.'),
            _ => break,
        }
        i += 1;
    }
    let rest = &words[i..];
    // After the table: an optional alias, then WHERE or the end; never a second table.
    let mut j = 0;
    if rest.first().is_some_and(|t| t.is_word("AS")) {
        j += 1;
    }
    if rest.get(j).is_some_and(|t| t.kind == Kind::Word && !t.is_word("WHERE")) {
        j += 1;
    }
    let tail_ok = rest.get(j).is_none_or(|t| t.is_word("WHERE")) && !rest.iter().any(|t| t.is_punct(','));
    (!name.is_empty() && tail_ok).then_some(name)
}

/// Points every read of a table `is_input` names in `relation` at `view`.
pub fn redirect(relation: &mut Relation, is_input: &dyn Fn(&str) -> bool, view: &str) {
    let child = match relation.rel_type.as_mut() {
        Some(relation::RelType::Project(p)) => p.input.as_deref_mut(),
        Some(relation::RelType::Filter(f)) => f.input.as_deref_mut(),
        Some(relation::RelType::WithColumns(w)) => w.input.as_deref_mut(),
        Some(relation::RelType::SubqueryAlias(a)) => a.input.as_deref_mut(),
        Some(relation::RelType::WithColumnsRenamed(r)) => r.input.as_deref_mut(),
        Some(relation::RelType::Drop(d)) => d.input.as_deref_mut(),
        Some(relation::RelType::ToDf(t)) => t.input.as_deref_mut(),
        Some(relation::RelType::Read(r)) => {
            if let Some(read::ReadType::NamedTable(t)) = r.read_type.as_mut()
                && is_input(&t.unparsed_identifier)
            {
                t.unparsed_identifier = view.to_string();
            }
            None
        }
        _ => None,
    };
    if let Some(child) = child {
        redirect(child, is_input, view);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sql(text: &str) -> Option<String> {
        projected_table(&Query::Sql(text.into()))
    }

    #[test]
    fn sql_projections_and_filters_of_one_table_qualify() {
        assert_eq!(
            sql("SELECT id, upper(name) AS n FROM LIVE.events WHERE amount > 0").as_deref(),
            Some("LIVE.events")
        );
        assert_eq!(sql("SELECT * FROM main.s.`t` e").as_deref(), Some("main.s.`t`"));
        for other in [
            "SELECT customer, sum(amount) FROM orders GROUP BY customer",
            "SELECT count(*) FROM orders",
            "SELECT DISTINCT id FROM orders",
            "SELECT * FROM a JOIN b ON a.id = b.id",
            "SELECT * FROM a, b",
            "SELECT *, rand() AS r FROM orders",
            "SELECT * FROM orders WHERE id IN (SELECT id FROM other)",
            "SELECT *, row_number() OVER (ORDER BY id) FROM orders",
            "SELECT * FROM orders LIMIT 5",
            "SELECT * FROM STREAM(orders)",
        ] {
            assert_eq!(sql(other), None, "{other}");
        }
    }
}
