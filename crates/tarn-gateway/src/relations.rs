//! The shape of Spark Connect plans: which relations a relation reads
//! ([`children_mut`]), so that every walk over a plan (the paths pass,
//! tarn-pipelines' reads of pipeline datasets) reaches the same nodes
//! without listing the relation types again.

use spark_connect_proto::{Relation, relation};

/// The relation types whose only child relation is `input`.
macro_rules! single_input {
    ($rel:expr, $($variant:ident),* $(,)?) => {
        match $rel {
            $(Some(relation::RelType::$variant(r)) => return r.input.as_deref_mut().into_iter().collect(),)*
            other => other,
        }
    };
}

/// The relations `relation` reads directly, in plan order. Leaves (reads,
/// SQL text, local data, ranges) and relation types tarn does not know
/// have none.
pub fn children_mut(relation: &mut Relation) -> Vec<&mut Relation> {
    let rel = single_input!(
        relation.rel_type.as_mut(),
        Project,
        Filter,
        Sort,
        Limit,
        Aggregate,
        Sample,
        Offset,
        Deduplicate,
        SubqueryAlias,
        Repartition,
        ToDf,
        WithColumnsRenamed,
        ShowString,
        Drop,
        Tail,
        WithColumns,
        Hint,
        Unpivot,
        ToSchema,
        RepartitionByExpression,
        MapPartitions,
        CollectMetrics,
        Parse,
        WithWatermark,
        HtmlString,
        Transpose,
        FillNa,
        DropNa,
        Replace,
        Summary,
        Crosstab,
        Describe,
        Cov,
        Corr,
        ApproxQuantile,
        FreqItems,
        SampleBy,
    );
    fn pair<'a>(a: Option<&'a mut Relation>, b: Option<&'a mut Relation>) -> Vec<&'a mut Relation> {
        a.into_iter().chain(b).collect()
    }
    match rel {
        Some(relation::RelType::Join(j)) => pair(j.left.as_deref_mut(), j.right.as_deref_mut()),
        Some(relation::RelType::SetOp(s)) => pair(s.left_input.as_deref_mut(), s.right_input.as_deref_mut()),
        Some(relation::RelType::AsOfJoin(j)) => pair(j.left.as_deref_mut(), j.right.as_deref_mut()),
        Some(relation::RelType::LateralJoin(j)) => pair(j.left.as_deref_mut(), j.right.as_deref_mut()),
        Some(relation::RelType::GroupMap(g)) => pair(g.input.as_deref_mut(), g.initial_input.as_deref_mut()),
        Some(relation::RelType::CoGroupMap(g)) => pair(g.input.as_deref_mut(), g.other.as_deref_mut()),
        Some(relation::RelType::WithRelations(w)) => {
            w.root.as_deref_mut().into_iter().chain(w.references.iter_mut()).collect()
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spark_connect_proto::{Filter, Join, Read, read};

    fn table(name: &str) -> Relation {
        let named = read::NamedTable { unparsed_identifier: name.into(), options: Default::default() };
        let read = Read { is_streaming: false, read_type: Some(read::ReadType::NamedTable(named)) };
        Relation { common: None, rel_type: Some(relation::RelType::Read(read)) }
    }

    fn names(relation: &mut Relation) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(relation::RelType::Read(Read { read_type: Some(read::ReadType::NamedTable(t)), .. })) =
            &relation.rel_type
        {
            out.push(t.unparsed_identifier.clone());
        }
        for child in children_mut(relation) {
            out.extend(names(child));
        }
        out
    }

    #[test]
    fn walks_reach_both_sides_of_a_join_under_a_filter() {
        let join = Join { left: Some(Box::new(table("a"))), right: Some(Box::new(table("b"))), ..Default::default() };
        let filter = Filter {
            input: Some(Box::new(Relation { common: None, rel_type: Some(relation::RelType::Join(Box::new(join))) })),
            condition: None,
        };
        let mut plan = Relation { common: None, rel_type: Some(relation::RelType::Filter(Box::new(filter))) };
        assert_eq!(names(&mut plan), ["a", "b"]);
        assert!(children_mut(&mut table("c")).is_empty());
    }
}
