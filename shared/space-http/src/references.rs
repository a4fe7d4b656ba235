//! Items a Space owns outside its own partitions — the pointer a public route finds it by,
//! its entry in a registry the worker reads — are each written with a reference inside the
//! Space's partitions, in the same transaction. Removing a deleted Space walks only its
//! own partitions; the references lead it to the rest.

use serde_json::{Map, Value, json};
use space_store::{Condition, Item, Write};

use crate::keys::{self, ItemKey};

/// Writes `item` (owned by `space`, outside its partitions) on `condition`, with its
/// reference.
pub fn put(space: &str, item: Item, condition: Condition) -> [Write; 2] {
    let target = ItemKey {
        pk: item.pk.clone(),
        sk: item.sk.clone(),
    };
    [Write::put(item, condition), record(space, &target)]
}

/// Deletes the item at `target` (owned by `space`) and its reference.
pub fn delete(space: &str, target: &ItemKey) -> [Write; 2] {
    let reference = keys::reference(space, target);
    [
        Write::delete(target.pk.clone(), target.sk.clone(), Condition::None),
        Write::delete(reference.pk, reference.sk, Condition::None),
    ]
}

fn record(space: &str, target: &ItemKey) -> Write {
    let reference = keys::reference(space, target);
    let mut body = Map::new();
    body.insert("pk".into(), json!(target.pk));
    body.insert("sk".into(), json!(target.sk));
    Write::put(Item::new(reference.pk, reference.sk, body), Condition::None)
}

/// The item a reference points at.
pub fn target(reference: &Item) -> Option<ItemKey> {
    let text = |name: &str| reference.body.get(name).and_then(Value::as_str).map(str::to_owned);
    Some(ItemKey {
        pk: text("pk")?,
        sk: text("sk")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reference_leads_to_its_item_and_goes_with_it() {
        let pointer = keys::public_pointer("form", "frm_1");
        let item = Item::new(pointer.pk.clone(), pointer.sk.clone(), Map::new());
        let [written, Write::Put { item: reference, .. }] = put("spc_1", item, Condition::NotExists) else {
            panic!("an item and its reference");
        };
        assert_eq!(written.key(), (pointer.pk.as_str(), pointer.sk.as_str()));
        assert_eq!(reference.pk, keys::references_partition("spc_1"));
        assert_eq!(target(&reference), Some(pointer.clone()));
        let removed: Vec<(String, String)> = delete("spc_1", &pointer)
            .iter()
            .map(|write| (write.key().0.to_owned(), write.key().1.to_owned()))
            .collect();
        assert_eq!(removed, [(pointer.pk, pointer.sk), (reference.pk, reference.sk)]);
    }

    #[test]
    fn different_targets_never_share_a_reference() {
        let a = ItemKey {
            pk: "A#B".into(),
            sk: "C".into(),
        };
        let b = ItemKey {
            pk: "A".into(),
            sk: "B#C".into(),
        };
        assert_ne!(keys::reference("s", &a), keys::reference("s", &b));
    }
}
