//! How a public (keyless) route gets inside a Space. Visitors reach a Space through
//! things that outlive it until the purge — a form's or booking page's pointer, a page's
//! snapshot, a feed token, a signed media link — so every public route enters its Space
//! through [`enter_space`], which refuses a Space that is no longer live.

use crate::error::ApiError;
use crate::keys;
use crate::operation::Call;

/// Puts a visitor's call inside `space` when the Space is live, else answers `missing()`
/// (the route's own 404: a deleted Space looks like anything else that is not there).
///
/// Live means the Space's record exists: deleting a Space removes it in the transaction
/// that writes the tombstone, and this read is consistent, so a public route refuses the
/// Space from the moment the deletion returns. Checking the record rather than the
/// tombstone also refuses Spaces deleted before tombstones were written.
pub async fn enter_space(call: &mut Call, space: &str, missing: impl FnOnce() -> ApiError) -> Result<(), ApiError> {
    let record = keys::space_meta(space);
    if call.engine.store().get(&record.pk, &record.sk).await?.is_none() {
        return Err(missing());
    }
    call.principal = call.principal.clone().in_space(space);
    Ok(())
}
