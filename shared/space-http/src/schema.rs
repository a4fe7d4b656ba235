//! [`Schema`]: an operation's JSON Schema, built the first time something reads it.
//!
//! Only OpenAPI, MCP's `tools/list` and the tests read schemas; a Lambda function serving
//! requests never does. Building every resource's item, list and body schemas in `main`
//! cost a family with many fields (booking) most of its cold start, so they wait until
//! asked for, and are then kept.
//!
//! A schema may carry a name (`Task`, `TaskCreate`): OpenAPI lists it once under that name
//! in `components/schemas` and refers to it. The value itself stays self-contained, so MCP
//! tools read it as it is.

use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, LazyLock};

use serde_json::Value;

type Build = Box<dyn FnOnce() -> Value + Send>;

/// A JSON Schema value, built once on first read, and its name if it has one. Cheap to
/// clone (clones share the value).
#[derive(Clone)]
pub struct Schema {
    value: Arc<LazyLock<Value, Build>>,
    name: Option<Arc<str>>,
}

impl Schema {
    /// A schema that `build` makes when it is first read.
    pub fn lazy(build: impl FnOnce() -> Value + Send + 'static) -> Schema {
        Schema {
            value: Arc::new(LazyLock::new(Box::new(build))),
            name: None,
        }
    }

    /// A schema derived from this one by `derive`, also on first read (this one is built
    /// then too, if it was not yet). The derived schema has no name of its own.
    pub fn map(&self, derive: impl FnOnce(Value) -> Value + Send + 'static) -> Schema {
        let source = self.clone();
        Schema::lazy(move || derive(Value::clone(&source)))
    }

    /// This schema changed by `amend` (a field added), on first read, keeping its name: it
    /// still describes the same thing.
    pub fn amend(&self, amend: impl FnOnce(Value) -> Value + Send + 'static) -> Schema {
        Schema {
            name: self.name.clone(),
            ..self.map(amend)
        }
    }

    /// The same schema under `name`, the component OpenAPI lists it as (PascalCase,
    /// like `Task`). Schemas with equal values may share a name; OpenAPI lists them once.
    pub fn named(mut self, name: impl Into<Arc<str>>) -> Schema {
        self.name = Some(name.into());
        self
    }

    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
}

impl Deref for Schema {
    type Target = Value;

    fn deref(&self) -> &Value {
        &self.value
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
        self.name == other.name && **self == **other
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

    #[test]
    fn a_name_travels_with_clones_but_not_to_derived_schemas() {
        let item = Schema::from(json!({"type": "object"})).named("Task");
        assert_eq!(item.clone().name(), Some("Task"));
        assert_eq!(item.map(|v| v).name(), None);
        assert_eq!(item.amend(|v| v).name(), Some("Task"));
        assert_eq!(*item, json!({"type": "object"}), "the value is untouched");
    }
}
