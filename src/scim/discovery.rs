//! Discovery documents (RFC 7644 §4): `/ServiceProviderConfig`, `/Schemas`,
//! `/ResourceTypes`. They state exactly what this server does — the limits below are the
//! ones the handlers enforce — so a client can configure itself from them.

use serde_json::{json, Value};

use super::schema::{schema_by_id, schemas_list_response, ResourceSchema, GROUP, LIST_RESPONSE_URN, USER};

/// URN of the service provider configuration resource (RFC 7643 §5).
pub const SPC_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";

/// Largest request body, single resource or Bulk (advertised as `bulk.maxPayloadSize`).
pub const MAX_PAYLOAD: usize = 1024 * 1024;
/// Most operations of one Bulk request.
pub const MAX_BULK_OPERATIONS: usize = 1000;

/// The resource types served.
pub const RESOURCE_TYPES: [&ResourceSchema; 2] = [&USER, &GROUP];

pub fn service_provider_config(base: &str) -> Value {
    json!({
        "schemas": [SPC_URN],
        "documentationUri": "https://datatracker.ietf.org/doc/html/rfc7644",
        "patch": { "supported": true },
        "bulk": { "supported": true, "maxOperations": MAX_BULK_OPERATIONS, "maxPayloadSize": MAX_PAYLOAD },
        "filter": { "supported": true, "maxResults": super::query::MAX_COUNT },
        "changePassword": { "supported": false },
        "sort": { "supported": true },
        "etag": { "supported": true },
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "A SCIM token of one account: provisor token create --account ID --scope scim",
            "specUri": "https://datatracker.ietf.org/doc/html/rfc6750",
            "primary": true,
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{base}/ServiceProviderConfig"),
        },
    })
}

pub fn schemas(base: &str) -> Value {
    schemas_list_response(base)
}

pub fn schema(base: &str, id: &str) -> Option<Value> {
    schema_by_id(id).map(|s| s.to_json(base))
}

pub fn resource_types(base: &str) -> Value {
    let list: Vec<Value> = RESOURCE_TYPES.iter().map(|r| r.resource_type_json(base)).collect();
    json!({
        "schemas": [LIST_RESPONSE_URN],
        "totalResults": list.len(),
        "itemsPerPage": list.len(),
        "startIndex": 1,
        "Resources": list,
    })
}

pub fn resource_type(base: &str, id: &str) -> Option<Value> {
    RESOURCE_TYPES.iter().find(|r| r.name.eq_ignore_ascii_case(id)).map(|r| r.resource_type_json(base))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_describe_the_served_resources() {
        let spc = service_provider_config("https://h/scim/v2");
        assert_eq!(spc["bulk"]["maxPayloadSize"], MAX_PAYLOAD);
        assert_eq!(spc["etag"]["supported"], true);
        let rts = resource_types("https://h/scim/v2");
        assert_eq!(rts["totalResults"], 2);
        assert_eq!(resource_type("x", "user").unwrap()["endpoint"], "/Users");
        assert!(resource_type("x", "Device").is_none());
        assert!(schema("x", "urn:ietf:params:scim:schemas:core:2.0:Group").is_some());
        assert!(schema("x", "urn:nope").is_none());
    }
}
