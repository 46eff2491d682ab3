//! Opaque page tokens. A token is the offset of the next page, so a listing
//! that changes between pages may shift by the rows added or removed, as the
//! Databricks APIs document for their own tokens.

use crate::ApiError;

pub fn encode(offset: usize) -> String {
    format!("o{offset}")
}

pub fn decode(token: &str) -> Result<usize, ApiError> {
    token
        .strip_prefix('o')
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| ApiError::invalid_parameter(format!("Invalid page token: {token}")))
}

/// One page of `items` starting at `offset`, and the token of the next page.
pub fn slice<T: Clone>(items: &[T], offset: usize, size: usize) -> (Vec<T>, Option<String>) {
    let end = offset.saturating_add(size).min(items.len());
    let page = items.get(offset.min(items.len())..end).unwrap_or(&[]).to_vec();
    let next = (end < items.len()).then(|| encode(end));
    (page, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_cover_every_item_once() {
        let items: Vec<u32> = (0..7).collect();
        let mut seen = vec![];
        let mut offset = 0;
        loop {
            let (page, next) = slice(&items, offset, 3);
            seen.extend(page);
            match next {
                Some(t) => offset = decode(&t).unwrap(),
                None => break,
            }
        }
        assert_eq!(seen, items);
        assert!(decode("garbage").is_err());
    }
}
