//! Listing queries come back a page at a time with an opaque cursor for the next page, so no
//! result is ever cut silently.

use serde::{Deserialize, Serialize};

/// The most items one page may ask for.
pub const MAX_PAGE_SIZE: usize = 1000;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PageRequest {
    /// Items wanted (1..=[`MAX_PAGE_SIZE`]; 0 means the default of 100).
    pub limit: usize,
    /// The `next` of the previous page; `None` for the first page.
    pub cursor: Option<String>,
}

impl PageRequest {
    pub fn first(limit: usize) -> Self {
        Self {
            limit,
            cursor: None,
        }
    }

    pub fn after(limit: usize, cursor: impl Into<String>) -> Self {
        Self {
            limit,
            cursor: Some(cursor.into()),
        }
    }

    pub fn size(&self) -> usize {
        match self.limit {
            0 => 100,
            n => n.min(MAX_PAGE_SIZE),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Opaque; pass it back to get the next page. `None` when this was the last page.
    pub next: Option<String>,
}

impl<T> Page<T> {
    pub fn last(items: Vec<T>) -> Self {
        Self { items, next: None }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next: self.next,
        }
    }
}

/// Follows cursors to the end (admin tools and tests; screens page).
pub async fn collect_all<T, F, Fut, E>(page_size: usize, mut fetch: F) -> Result<Vec<T>, E>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: std::future::Future<Output = Result<Page<T>, E>>,
{
    let mut all = Vec::new();
    let mut request = PageRequest::first(page_size);
    loop {
        let page = fetch(request).await?;
        all.extend(page.items);
        match page.next {
            Some(next) => request = PageRequest::after(page_size, next),
            None => return Ok(all),
        }
    }
}
