//! [`Schema`]: an operation's JSON Schema, built the first time something reads it.
//!
//! Only OpenAPI, MCP's `tools/list` and the tests read schemas; a Lambda function serving
//! requests never does. Building every resource's item, list and body schemas in `main`
//! cost a family with many fields (booking) most of its cold start, so they wait until
//! asked for, and are then kept.

use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, LazyLock};

use serde_json::Value;

type Build = Box<dyn FnOnce() -> Value + Send>;

/// A JSON Schema value, built once on first read. Cheap to clone (clones share the value).
#[derive(Clone)]
pub struct Schema(Arc<LazyLock<Value, Build>>);

impl Schema {
    /// A schema that `build` makes when it is first read.
    pub fn lazy(build: impl FnOnce() -> Value + Send + 'static) -> Schema {
        Schema(Arc::new(LazyLock::new(Box::new(build))))
    }

    /// A schema derived from this one by `derive`, also on first read (this one is built
    /// then too, if it was not yet).
    pub fn map(&self, derive: impl FnOnce(Value) -> Value + Send + 'static) -> Schema {
        let source = self.clone();
        Schema::lazy(move || derive(Value::clone(&source)))
    }
}

impl Deref for Schema {
    type Target = Value;

    fn deref(&self) -> &Value {
        &self.0
    }
}

/// A schema built by this function when first read: `.answers(StatusCode::OK, item_schema)`.
impl<F: FnOnce() -> Value + Send + 'static> From<F> for Schema {
    fn from(build: F) -> Schema {
        Schema::lazy(build)
    }
}

/// A schema already built.
impl From<Value> for Schema {
    fn from(value: Value) -> Schema {
        Schema::lazy(move || value)
    }
}

impl fmt::Debug for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Value::fmt(self, f)
    }
}

impl PartialEq for Schema {
    fn eq(&self, other: &Schema) -> bool {
        **self == **other
    }
}

impl serde::Serialize for Schema {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Value::serialize(self, serializer)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use serde_json::json;

    use super::*;

    #[test]
    fn a_lazy_schema_is_built_once_on_first_read_and_shared_by_clones() {
        static BUILDS: AtomicUsize = AtomicUsize::new(0);
        let schema = Schema::lazy(|| {
            BUILDS.fetch_add(1, Ordering::SeqCst);
            json!({"type": "object"})
        });
        let list = schema.map(|item| json!({"type": "array", "items": item}));
        let copy = schema.clone();
        assert_eq!(BUILDS.load(Ordering::SeqCst), 0, "nothing is built until read");
        assert_eq!(list["items"]["type"], "object");
        assert_eq!(*copy, json!({"type": "object"}));
        assert_eq!(schema["type"], "object");
        assert_eq!(BUILDS.load(Ordering::SeqCst), 1);
    }
}
