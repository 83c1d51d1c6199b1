//! Read-ahead: the next Logo page is read while the current one is written (or checked), so
//! Logo's answer time and DynamoDB's overlap. A page read ahead lives only in the invocation:
//! after a cut-off it is simply read again.

use std::future::Future;

use super::arp::LogoArp;
use super::invoice::LogoInvoiceWire;
use super::ports::LogoPage;
use crate::error::PortError;

/// The pages read ahead, one slot per list the phases page through.
#[derive(Default)]
pub(super) struct Ahead {
    pub(super) arps: ReadAhead<LogoArp>,
    pub(super) invoices: ReadAhead<LogoInvoiceWire>,
}

pub(super) struct ReadAhead<T>(Option<(u64, LogoPage<T>)>);

impl<T> Default for ReadAhead<T> {
    fn default() -> Self {
        ReadAhead(None)
    }
}

impl<T> ReadAhead<T> {
    /// The page at `offset`: the one read ahead, else `read(offset)` now.
    pub(super) async fn page<F>(
        &mut self,
        offset: u64,
        read: impl FnOnce(u64) -> F,
    ) -> Result<LogoPage<T>, PortError>
    where
        F: Future<Output = Result<LogoPage<T>, PortError>>,
    {
        match self.0.take() {
            Some((at, page)) if at == offset => Ok(page),
            _ => read(offset).await,
        }
    }

    /// `work`'s result, with the page after this one (`n` records at `offset`, `more` after
    /// them) read meanwhile. A failed read ahead is not an error: the page is read again when
    /// its turn comes.
    pub(super) async fn alongside<R, F>(
        &mut self,
        (offset, n, more): (u64, usize, bool),
        work: impl Future<Output = R>,
        read: impl FnOnce(u64) -> F,
    ) -> R
    where
        F: Future<Output = Result<LogoPage<T>, PortError>>,
    {
        let next = offset + n as u64;
        let (result, ahead) = futures::join!(work, async {
            match more && n > 0 {
                true => read(next).await.ok(),
                false => None,
            }
        });
        self.0 = ahead.map(|page| (next, page));
        result
    }
}
