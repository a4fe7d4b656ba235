//! Draft campaigns: what to advertise on one of the Space's ads accounts, for how much and
//! to whom. A key drafts and edits them (`ads:write`); every campaign stays a `draft`,
//! because launching one spends money and is the owner's, in the app.

use serde_json::{Map, Value, json};
use space_auth::Domain;
use space_http::fields::{CURRENCY, CustomKind, Field, FieldKind, WriteMode, body_schema, parse_datetime, validate};
use space_http::keys;
use space_http::operation::{Call, Handler, Reply, handler};
use space_http::resource::{Filter, Resource};
use space_http::{ApiError, FieldErrors};

use crate::accounts;

pub const COLLECTION: &str = "ad_campaigns";
pub const OBJECTIVES: &[&str] = &["awareness", "traffic", "leads", "sales"];
pub const PERIODS: &[&str] = &["daily", "lifetime"];
/// The one status a campaign has here: launching is not an API operation.
pub const STATUSES: &[&str] = &["draft"];
/// The largest budget in minor units: ten billion in a two-decimal currency.
pub const MAX_AMOUNT: i64 = 1_000_000_000_000;
/// The youngest and oldest ages the ad networks target (65 stands for 65 and over).
pub const MIN_AGE: i64 = 13;
pub const MAX_AGE: i64 = 65;
/// Creatives a campaign names at most.
pub const MAX_CREATIVES: usize = 10;
const MAX_ID_CHARS: usize = 64;

/// What the schemas cannot say, for the descriptions of the writes.
pub const RULES: &str = "`account_id` must name an ads account of this Space (GET /ads/accounts) and each of \
     `creative_media_ids` a media item of this Space that has finished uploading; `end_at` must be after \
     `start_at` and `audience.age_max` at least `audience.age_min`; otherwise 422 naming the field. A campaign \
     is always a draft: launching it spends money and happens in the app, never through a key.";

/// ISO 3166-1 alpha-2: every officially assigned code.
pub const COUNTRIES: &[&str] = &[
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ", "BA", "BB", "BD",
    "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS", "BT", "BV", "BW", "BY", "BZ", "CA",
    "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN", "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE",
    "DJ", "DK", "DM", "DO", "DZ", "EC", "EE", "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA",
    "GB", "GD", "GE", "GF", "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK",
    "HM", "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM", "JO", "JP",
    "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC", "LI", "LK", "LR", "LS", "LT",
    "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK", "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS",
    "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA", "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ",
    "OM", "PA", "PE", "PF", "PG", "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS",
    "RU", "RW", "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS", "ST",
    "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO", "TR", "TT", "TV", "TW",
    "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI", "VN", "VU", "WF", "WS", "YE", "YT", "ZA",
    "ZM", "ZW",
];

const AGE: FieldKind = FieldKind::Integer {
    min: MIN_AGE,
    max: MAX_AGE,
};

const BUDGET_FIELDS: &[Field] = &[
    Field::new(
        "amount",
        FieldKind::Integer {
            min: 1,
            max: MAX_AMOUNT,
        },
        "What may be spent per period, in the currency's minor unit (cents): 5000 is 50.00.",
    )
    .required(),
    Field::new("currency", CURRENCY, "The budget's currency.").required(),
    Field::new(
        "period",
        FieldKind::Enum(PERIODS),
        "`daily`: the amount each day; `lifetime`: the amount over the whole campaign.",
    )
    .required(),
];

const COUNTRY_LIST: FieldKind = FieldKind::Custom(CustomKind {
    schema: || json!({"type": "array", "items": {"type": "string", "enum": COUNTRIES}, "maxItems": COUNTRIES.len(), "description": "ISO 3166-1 alpha-2 codes in capitals, like US or DE."}),
    check: check_countries,
});

const AUDIENCE_FIELDS: &[Field] = &[
    Field::new("countries", COUNTRY_LIST, "Where the people are; none for everywhere."),
    Field::new("age_min", AGE, "The youngest age reached."),
    Field::new(
        "age_max",
        AGE,
        "The oldest age reached (65 stands for 65 and over); at least age_min.",
    ),
    Field::new(
        "interests",
        FieldKind::Tags,
        "What the people are into, as the network's interest names.",
    ),
];

const CREATIVES: FieldKind = FieldKind::Custom(CustomKind {
    schema: || json!({"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": MAX_ID_CHARS}, "maxItems": MAX_CREATIVES}),
    check: check_creatives,
});

/// The campaign resource.
pub fn campaigns() -> Resource {
    Resource {
        domain: Domain::Ads,
        name: "ads_campaigns",
        collection: COLLECTION,
        path: "/ads/campaigns",
        item_param: "id",
        singular: "ad campaign",
        plural: "ad campaigns",
        event_prefix: "ad_campaign",
        id_prefix: "adc",
        parent: None,
        fields: vec![
            Field::new(
                "account_id",
                FieldKind::Text { max: MAX_ID_CHARS },
                "The ads account it runs on: an id GET /ads/accounts lists.",
            )
            .required(),
            Field::new("name", FieldKind::Text { max: 200 }, "How the Space calls it.").required(),
            Field::new("objective", FieldKind::Enum(OBJECTIVES), "What it is for.").required(),
            Field::new(
                "budget",
                FieldKind::Custom(CustomKind {
                    schema: || body_schema(BUDGET_FIELDS, WriteMode::Create),
                    check: |value| nested(BUDGET_FIELDS, value),
                }),
                "How much may be spent: an integer amount in minor units (more than 0), its currency and its period.",
            )
            .required(),
            Field::new("start_at", FieldKind::DateTime, "When it would start (RFC 3339).").required(),
            Field::new(
                "end_at",
                FieldKind::DateTime,
                "When it would end (RFC 3339), after start_at; none to run until stopped.",
            ),
            Field::new(
                "audience",
                FieldKind::Custom(CustomKind {
                    schema: || body_schema(AUDIENCE_FIELDS, WriteMode::Create),
                    check: check_audience,
                }),
                "Who it would reach; none for the network's default audience.",
            ),
            Field::new(
                "creative_media_ids",
                CREATIVES,
                "The creatives: ids of media items of this Space that have finished uploading.",
            )
            .default(|| json!([])),
        ],
        filters: vec![
            Filter::Lookup {
                param: "account_id",
                field: "account_id",
                kind: FieldKind::Text { max: MAX_ID_CHARS },
                unique: false,
            },
            Filter::Equals {
                param: "objective",
                field: "objective",
                kind: FieldKind::Enum(OBJECTIVES),
            },
        ],
        rules: Some(rules),
    }
}

/// A nested object checked field by field, its problems named in one message.
fn nested(fields: &[Field], value: &Value) -> Result<Value, String> {
    match validate(fields, value, WriteMode::Create) {
        Ok(valid) => Ok(Value::Object(valid.set)),
        Err(errors) => {
            let problems: Vec<String> = errors
                .into_iter()
                .map(|(field, messages)| format!("{field}: {}", messages.join("; ")))
                .collect();
            Err(problems.join(", "))
        }
    }
}

fn check_audience(value: &Value) -> Result<Value, String> {
    let audience = nested(AUDIENCE_FIELDS, value)?;
    let age = |name: &str| audience.get(name).and_then(Value::as_i64);
    if let (Some(min), Some(max)) = (age("age_min"), age("age_max"))
        && max < min
    {
        return Err(format!("age_max: must be at least age_min ({min})"));
    }
    Ok(audience)
}

fn check_countries(value: &Value) -> Result<Value, String> {
    let list = value.as_array().ok_or("must be a list of country codes")?;
    if list.len() > COUNTRIES.len() {
        return Err(format!("must hold at most {} countries", COUNTRIES.len()));
    }
    let mut kept: Vec<&str> = Vec::with_capacity(list.len());
    for entry in list {
        let code = entry
            .as_str()
            .filter(|code| COUNTRIES.contains(code))
            .ok_or_else(|| format!("{entry} is not an ISO 3166-1 alpha-2 country code in capitals, like US or DE"))?;
        if !kept.contains(&code) {
            kept.push(code);
        }
    }
    Ok(json!(kept))
}

fn check_creatives(value: &Value) -> Result<Value, String> {
    let list = value.as_array().ok_or("must be a list of media ids")?;
    if list.len() > MAX_CREATIVES {
        return Err(format!("must hold at most {MAX_CREATIVES} media ids"));
    }
    let mut ids: Vec<&str> = Vec::with_capacity(list.len());
    for entry in list {
        let id = entry
            .as_str()
            .filter(|id| !id.is_empty() && id.chars().count() <= MAX_ID_CHARS)
            .ok_or("must be a list of media ids (strings)")?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(json!(ids))
}

/// A campaign is a draft, and ends after it starts.
fn rules(campaign: &mut Map<String, Value>) -> Result<(), FieldErrors> {
    let at = |name: &str| campaign.get(name).and_then(Value::as_str).and_then(parse_datetime);
    if let (Some(start), Some(end)) = (at("start_at"), at("end_at"))
        && end <= start
    {
        return Err(FieldErrors::from([(
            "end_at".to_owned(),
            vec!["must be after start_at".to_owned()],
        )]));
    }
    campaign.insert("status".into(), json!("draft"));
    Ok(())
}

/// A campaign as the API shows it.
pub fn schema() -> Value {
    let mut schema = campaigns().item_schema();
    schema["properties"]["status"] = json!({"type": "string", "enum": STATUSES, "description": "Always `draft`: launching spends money and happens in the app."});
    if let Some(required) = schema["required"].as_array_mut() {
        required.push(json!("status"));
    }
    schema
}

/// What a write names outside the campaign, checked against the Space: the ads account
/// and the creatives. Only the fields the write sets are read.
async fn check_references(call: &Call, set: &Map<String, Value>) -> Result<(), ApiError> {
    let mut errors = FieldErrors::new();
    if let Some(id) = set.get("account_id").and_then(Value::as_str)
        && let Err(why) = accounts::find(call, id).await?
    {
        errors.insert("account_id".into(), vec![why]);
    }
    let ids: Vec<&str> = set
        .get("creative_media_ids")
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !ids.is_empty() {
        let partition = keys::collection_partition(call.space_id()?, "media");
        let store = call.engine.store();
        let reads = ids.iter().map(|id| store.get(&partition, id));
        let found = futures::future::try_join_all(reads).await?;
        let problems: Vec<String> = ids
            .iter()
            .zip(found)
            .filter_map(|(id, item)| match item {
                None => Some(format!("there is no media `{id}` in this Space")),
                Some(item) if item.body.get("status").and_then(Value::as_str) != Some("ready") => {
                    Some(format!("media `{id}` has not finished uploading"))
                }
                Some(_) => None,
            })
            .collect();
        if !problems.is_empty() {
            errors.insert("creative_media_ids".into(), problems);
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation(errors))
    }
}

/// `inner` (the resource's own create, update or replace) once the body is valid and what
/// it names exists in the Space.
pub fn checked(inner: Handler, mode: WriteMode) -> Handler {
    handler(move |call: Call| {
        let inner = inner.clone();
        async move {
            let resource = campaigns();
            let validated = validate(&resource.fields, &call.body, mode).map_err(ApiError::validation)?;
            if mode != WriteMode::Create {
                // Another Space's campaign is not found, whatever the write names.
                resource.load(&call, call.path_param("id")?).await?;
            }
            check_references(&call, &validated.set).await?;
            inner(call).await
        }
    })
}

/// Why `POST /ads/campaigns/{id}/launch` never launches.
pub const LAUNCH_REFUSAL: &str = "Launching a campaign spends money, so it happens in the app, by the Space's owner: \
     no API key can launch one, whatever its scopes. The campaign stays a draft.";

/// `POST /ads/campaigns/{id}/launch`: the campaign is looked up (404 when it is not this
/// Space's), then refused.
pub async fn launch(call: Call) -> Result<Reply, ApiError> {
    let id = call.path_param("id")?.to_owned();
    campaigns().load(&call, &id).await?;
    Err(ApiError::Forbidden(LAUNCH_REFUSAL.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_assigned_country_once() {
        assert_eq!(COUNTRIES.len(), 249);
        let mut sorted = COUNTRIES.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.as_slice(), COUNTRIES, "sorted, each once");
        assert_eq!(check_countries(&json!(["US", "DE", "US"])), Ok(json!(["US", "DE"])));
        for refused in [json!(["us"]), json!(["XX"]), json!(["USA"]), json!([1])] {
            assert!(check_countries(&refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn audiences_are_checked_field_by_field_and_between_ages() {
        let audience = check_audience(
            &json!({"countries": ["FR"], "age_min": 18, "age_max": 18.0, "interests": ["golf", "golf"]}),
        );
        assert_eq!(
            audience,
            Ok(json!({"countries": ["FR"], "age_min": 18, "age_max": 18, "interests": ["golf"]}))
        );
        for (refused, named) in [
            (json!({"age_min": 12}), "age_min"),
            (json!({"age_max": 66}), "age_max"),
            (json!({"age_min": 30, "age_max": 20}), "age_max"),
            (json!({"gender": "any"}), "gender"),
        ] {
            let message = check_audience(&refused).expect_err("refused");
            assert!(message.starts_with(named), "{message}");
        }
    }

    #[test]
    fn budgets_are_whole_positive_minor_units() {
        let budget = |amount: Value| {
            nested(
                BUDGET_FIELDS,
                &json!({"amount": amount, "currency": "EUR", "period": "daily"}),
            )
        };
        assert_eq!(
            budget(json!(5000)),
            Ok(json!({"amount": 5000, "currency": "EUR", "period": "daily"}))
        );
        for amount in [json!(0), json!(-5), json!(12.5), json!("5000")] {
            assert!(budget(amount.clone()).is_err(), "{amount}");
        }
    }
}
