//! Assets: media files and the characters they show.
//!
//! Media bytes live in the engine's blob store (S3 in AWS, files under `spacectl serve`);
//! items, their metadata and events live in the store like every other resource.

mod characters;
mod links;
mod media;
mod sniff;
mod upload;

use axum::Router;
use space_http::{Engine, Operation};

pub use characters::{MAX_REFERENCES, characters};
pub use links::{Grant, Link};
pub use media::{LINK_SECONDS, MAX_DIRECT_BYTES, MAX_UPLOAD_BYTES, content_disposition, media, media_schema};

/// Every operation of the family.
pub fn operations() -> Vec<Operation> {
    let mut operations = media::operations();
    operations.extend(characters::operations());
    space_http::operation::describe(
        &mut operations,
        &["assets_media_create"],
        "The declared `content_type` must be what the bytes are (they are sniffed); otherwise 422.",
    );
    space_http::operation::describe(
        &mut operations,
        &[
            "assets_characters_create",
            "assets_characters_replace",
            "assets_characters_update",
        ],
        "Reference media ids must name ready media items of this Space; otherwise 422.",
    );
    operations
}

/// What this family's Lambda binary carries beyond the table (IAM follows from it).
pub const BACKENDS: space_http::lambda::Backends = space_http::lambda::Backends::TABLE_AND_MEDIA;

/// The family's routes; the Lambda binary and `spacectl serve` both mount them.
pub fn router() -> Router<Engine> {
    space_http::rest::routes(operations())
}
