//! Schema test: responses of every implemented method, and every error body the simulator
//! sends, validate against VK's official JSON schema (../shared/vk-api-schema, 5.199).
//!
//! The schema is loaded file by file into a `jsonschema` registry under
//! `file:///vk-api-schema/{path}`, so its relative `$ref`s (`../users/objects.json#/...`)
//! resolve across files. Three conversions happen while loading, each for a known defect of
//! VK's files rather than to loosen the check:
//! 1. draft-03 property-level `"required": true` becomes a draft-04+ `required: [names]` array
//!    (SOURCE.md: 2,337 places); every other boolean `required` is dropped;
//! 2. `discriminator` + `oneOf` (users_subscriptions_item: a profile or a community, told apart
//!    by `type`) becomes `if type == X then $ref mapping[X]`, because a draft-07 validator
//!    ignores discriminators and `oneOf` alone cannot tell a profile from a community;
//! 3. `groups_group` loses `additionalProperties: false`: `groups_group_full` extends it through
//!    `allOf`, so under every draft that flag rejects each extended field (members_count,
//!    can_post...) VK documents, and real VK sends;
//! 4. no object requires `inner_type` (a code-generation tag of the schema: `base_error`,
//!    `wall_wallpost`...; VK's answers do not carry it, see shared/vk-api.md).
//!
//! The upload servers' answers (`{server, photo, hash}`, `{file}`) are not API responses: the
//! schema describes them wrapped in `response` (photos_wall_upload_response,
//! docs_doc_upload_response), so they are checked wrapped.
//!
//! `$schema` keys are removed and everything validates as draft 7.

use std::path::{Path, PathBuf};

use jsonschema::{Draft, Registry, Validator};
use serde_json::{json, Value};

use crate::{sim_post, small_config, spawn_sim, Vk};

const BASE: &str = "file:///vk-api-schema/";

fn schema_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vk-api-schema");
    assert!(
        dir.join("errors.json").is_file(),
        "VK's JSON schema is missing at {}: check out the repository so that shared/ sits beside \
         it (see shared/vk-api-schema/SOURCE.md)",
        dir.display()
    );
    dir
}

/// Applies the conversions listed in the module docs to one schema node, recursively.
fn convert(node: &mut Value) {
    match node {
        Value::Object(obj) => {
            obj.remove("$schema");
            if let Some(Value::Object(props)) = obj.get_mut("properties") {
                let mut required: Vec<Value> = Vec::new();
                for (name, sub) in props.iter_mut() {
                    if let Some(o) = sub.as_object_mut() {
                        if o.get("required") == Some(&Value::Bool(true)) && name != "inner_type" {
                            required.push(Value::String(name.clone()));
                        }
                        if o.get("required").is_some_and(Value::is_boolean) {
                            o.remove("required");
                        }
                    }
                }
                if !required.is_empty() {
                    match obj.get_mut("required") {
                        Some(Value::Array(existing)) => existing.extend(required),
                        _ => {
                            obj.insert("required".into(), Value::Array(required));
                        }
                    }
                }
            }
            if obj.get("required").is_some_and(Value::is_boolean) {
                obj.remove("required");
            }
            let discriminator = obj
                .get("discriminator")
                .filter(|_| obj.contains_key("oneOf"))
                .and_then(|d| {
                    Some((
                        d["propertyName"].as_str()?.to_string(),
                        d["mapping"].as_object()?.clone(),
                    ))
                });
            if let Some((prop, mapping)) = discriminator {
                let keys: Vec<Value> = mapping.keys().map(|k| json!(k)).collect();
                let branches: Vec<Value> = mapping
                    .iter()
                    .map(|(k, target)| {
                        json!({
                            "if": {"properties": {prop.clone(): {"const": k}}, "required": [prop.clone()]},
                            "then": {"$ref": target},
                        })
                    })
                    .collect();
                obj.remove("oneOf");
                obj.remove("discriminator");
                obj.insert("required".into(), json!([prop.clone()]));
                obj.insert("properties".into(), json!({prop: {"enum": keys}}));
                obj.insert("allOf".into(), Value::Array(branches));
            }
            for v in obj.values_mut() {
                convert(v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(convert),
        _ => {}
    }
}

fn load_files(dir: &Path, rel: &str, out: &mut Vec<(String, Value)>) {
    for entry in std::fs::read_dir(dir).expect("readable schema folder") {
        let entry = entry.expect("dir entry");
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        if path.is_dir() {
            load_files(&path, &format!("{rel}{name}/"), out);
        } else if name.ends_with(".json") {
            let text = std::fs::read_to_string(&path).expect("readable schema file");
            let mut v: Value = serde_json::from_str(&text).expect("schema file is JSON");
            convert(&mut v);
            if rel == "groups/" && name == "objects.json" {
                if let Some(g) = v.pointer_mut("/definitions/groups_group") {
                    g.as_object_mut()
                        .expect("object")
                        .remove("additionalProperties");
                }
            }
            if rel == "base/" && name == "objects.json" {
                let req = v
                    .pointer_mut("/definitions/base_error/required")
                    .and_then(Value::as_array_mut)
                    .expect("base_error has required properties");
                req.retain(|r| r != "inner_type");
            }
            out.push((format!("{BASE}{rel}{name}"), v));
        }
    }
}

struct Schema {
    registry: Registry<'static>,
    errors: Value,
}

impl Schema {
    fn load() -> Schema {
        let dir = schema_dir();
        let mut files = Vec::new();
        load_files(&dir, "", &mut files);
        assert!(files.len() > 100, "the whole schema is there");
        let errors = files
            .iter()
            .find(|(uri, _)| uri.ends_with("/errors.json"))
            .expect("errors.json")
            .1
            .clone();
        let registry = Registry::new()
            .draft(Draft::Draft7)
            .retrieve_known_draft_meta_schemas(false)
            .extend(
                files
                    .into_iter()
                    .map(|(u, v)| (u, Draft::Draft7.create_resource(v))),
            )
            .expect("valid uris")
            .prepare()
            .expect("schema registry");
        Schema { registry, errors }
    }

    fn validator(&self, reference: &str) -> Validator {
        jsonschema::options()
            .with_draft(Draft::Draft7)
            .with_registry(&self.registry)
            .should_validate_formats(true)
            .build(&json!({"$ref": format!("{BASE}{reference}")}))
            .unwrap_or_else(|e| panic!("schema {reference}: {e}"))
    }

    fn check(&self, what: &str, reference: &str, instance: &Value) {
        let v = self.validator(reference);
        let errors: Vec<String> = v
            .iter_errors(instance)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .take(5)
            .collect();
        assert!(
            errors.is_empty(),
            "{what} does not validate against {reference}: {errors:?}\n{}",
            &instance.to_string()[..instance.to_string().len().min(600)]
        );
    }

    /// Whether errors.json lists this code.
    fn knows_code(&self, code: i64) -> bool {
        self.errors["errors"]
            .as_object()
            .expect("errors")
            .values()
            .any(|e| e["code"] == json!(code))
    }
}

fn resp(name: &str) -> String {
    let section = name.split('_').next().expect("section");
    format!("{section}/responses.json#/definitions/{name}")
}

#[tokio::test]
async fn the_validator_really_validates() {
    let schema = Schema::load();
    schema.check(
        "a good body",
        &resp("friends_get_response"),
        &json!({"response": {"count": 1, "items": [5]}}),
    );
    let v = schema.validator(&resp("friends_get_response"));
    assert!(!v.is_valid(&json!({"response": {"count": 1, "items": ["x"]}})));
    assert!(
        !v.is_valid(&json!({"response": {"items": [1]}})),
        "count is required"
    );
    // $refs across files resolve and are enforced
    let users = schema.validator(&resp("users_get_response"));
    assert!(
        users.is_valid(&json!({"response": [{"id": 1, "first_name": "A", "is_closed": false}]}))
    );
    assert!(!users.is_valid(&json!({"response": [{"id": "1"}]})));
    assert!(
        !users.is_valid(&json!({"response": [{"first_name": "A"}]})),
        "id is required"
    );
    assert!(!users.is_valid(&json!({"response": [{"id": 1, "is_closed": 0}]})));
    let groups = schema.validator(&resp("groups_getById_object_response"));
    assert!(!groups.is_valid(&json!({"response": {"groups": [{"id": 1, "type": "club"}]}})));
    let error = schema.validator("base/objects.json#/definitions/base_error");
    assert!(
        !error.is_valid(&json!({"error_msg": "x"})),
        "error_code is required"
    );
    assert!(!error.is_valid(&json!({"error_code": 5, "request_params": [{"key": "v"}]})));
    let u = schema.validator(&resp("users_getSubscriptions_extended_response"));
    assert!(!u.is_valid(&json!({"response": {"count": 1, "items": [{"id": 1, "type": "page", "is_closed": true}]}})),
        "a community's is_closed is 0/1/2");
}

#[tokio::test]
async fn every_method_response_validates() {
    let schema = Schema::load();
    let sim = spawn_sim(small_config()).await;
    let vk = Vk::new(&sim, &sim.pool_tokens()[0]);
    let named = sim.named();
    let hub = named.hub.to_string();
    let open = named.open.to_string();
    let all_fields = "screen_name,domain,sex,bdate,city,photo_50,photo_100,photo_200,photo_max,has_photo,verified,online,followers_count,common_count,counters,last_seen,is_friend";
    let group_fields =
        "members_count,can_post,can_suggest,wall,activity,description,verified,is_member";
    let mut cases: Vec<(&str, String, Value)> = Vec::new();
    let mut add = |what: &'static str, def: &str, body: Value| cases.push((what, resp(def), body));

    add(
        "friends.get",
        "friends_get_response",
        vk.call("friends.get", &[("user_id", &hub)]).await,
    );
    add(
        "friends.get fields",
        "friends_get_fields_response",
        vk.call(
            "friends.get",
            &[("user_id", &hub), ("count", "300"), ("fields", all_fields)],
        )
        .await,
    );
    add(
        "friends.getMutual target_uid",
        "friends_getMutual_response",
        vk.call(
            "friends.getMutual",
            &[("source_uid", &open), ("target_uid", &hub)],
        )
        .await,
    );
    let friends = vk
        .ok("friends.get", &[("user_id", &open), ("count", "100")])
        .await;
    let targets: Vec<String> = friends["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.to_string())
        .collect();
    add(
        "friends.getMutual target_uids",
        "friends_getMutual_target_uids_response",
        vk.call(
            "friends.getMutual",
            &[("source_uid", &open), ("target_uids", &targets.join(","))],
        )
        .await,
    );
    add(
        "users.getFollowers",
        "users_getFollowers_response",
        vk.call("users.getFollowers", &[("user_id", &hub)]).await,
    );
    add(
        "users.getFollowers fields",
        "users_getFollowers_fields_response",
        vk.call(
            "users.getFollowers",
            &[("user_id", &hub), ("fields", all_fields)],
        )
        .await,
    );
    let ids: Vec<String> = (1..=300).map(|i| i.to_string()).collect();
    add(
        "users.get",
        "users_get_response",
        vk.call(
            "users.get",
            &[
                ("user_ids", &format!("{},sim_hub,99999999", ids.join(","))),
                ("fields", all_fields),
            ],
        )
        .await,
    );
    // One id: the only users.get that carries `counters`.
    add(
        "users.get one id",
        "users_get_response",
        vk.call("users.get", &[("user_ids", &hub), ("fields", all_fields)])
            .await,
    );
    let celebrity = named.celebrity.to_string();
    add(
        "users.getFollowers celebrity",
        "users_getFollowers_response",
        vk.call(
            "users.getFollowers",
            &[
                ("user_id", &celebrity),
                ("count", "1000"),
                ("offset", "5000"),
            ],
        )
        .await,
    );
    add(
        "users.getSubscriptions",
        "users_getSubscriptions_response",
        vk.call("users.getSubscriptions", &[("user_id", &hub)])
            .await,
    );
    // A user who follows users and communities, so both kinds of item appear.
    let mut mixed = None;
    for id in 7..200u32 {
        let body = vk
            .call(
                "users.getSubscriptions",
                &[
                    ("user_id", &id.to_string()),
                    ("extended", "1"),
                    ("count", "200"),
                    ("fields", &format!("{all_fields},{group_fields}")),
                ],
            )
            .await;
        let items = body["response"]["items"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if items.iter().any(|i| i["type"] == "profile")
            && items.iter().any(|i| i["type"] != "profile")
        {
            mixed = Some(body);
            break;
        }
    }
    add(
        "users.getSubscriptions extended",
        "users_getSubscriptions_extended_response",
        mixed.expect("a user with mixed subscriptions"),
    );
    let gids: Vec<String> = (1..=200).map(|i| i.to_string()).collect();
    add(
        "groups.getById",
        "groups_getById_object_response",
        vk.call(
            "groups.getById",
            &[("group_ids", &gids.join(",")), ("fields", group_fields)],
        )
        .await,
    );
    let popular = vk
        .ok(
            "groups.getById",
            &[("group_ids", &gids.join(",")), ("fields", "members_count")],
        )
        .await;
    let popular = popular["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["is_closed"] == 0 && g.get("deactivated").is_none())
        .max_by_key(|g| g["members_count"].as_u64().unwrap())
        .unwrap()["id"]
        .to_string();
    add(
        "groups.getMembers",
        "groups_getMembers_response",
        vk.call("groups.getMembers", &[("group_id", &popular)])
            .await,
    );
    add(
        "groups.getMembers fields",
        "groups_getMembers_fields_response",
        vk.call(
            "groups.getMembers",
            &[("group_id", &popular), ("fields", all_fields)],
        )
        .await,
    );
    add(
        "utils.resolveScreenName user",
        "utils_resolveScreenName_response",
        vk.call("utils.resolveScreenName", &[("screen_name", "sim_hub")])
            .await,
    );
    add(
        "utils.resolveScreenName group",
        "utils_resolveScreenName_response",
        vk.call("utils.resolveScreenName", &[("screen_name", "club3")])
            .await,
    );
    add(
        "utils.getServerTime",
        "utils_getServerTime_response",
        vk.call("utils.getServerTime", &[]).await,
    );
    let can_post = vk
        .ok(
            "groups.getById",
            &[("group_ids", &gids.join(",")), ("fields", "can_post")],
        )
        .await;
    let open_group = can_post["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["can_post"] == 1)
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    add(
        "wall.post",
        "wall_post_response",
        vk.call(
            "wall.post",
            &[
                ("owner_id", &(-open_group).to_string()),
                ("message", "hello"),
                ("guid", "s1"),
            ],
        )
        .await,
    );
    add(
        "execute",
        "base_undefined_response",
        vk.call("execute", &[("code", r#"return {"a": API.users.get({"user_ids": "1,4"}), "b": API.friends.get({"user_id": 4})};"#)]).await,
    );
    for (what, def, body) in &cases {
        assert!(body.get("error").is_none(), "{what}: {body}");
        schema.check(what, def, body);
    }
    // groups.getById before 5.199 answers a bare array of group objects.
    let old = Vk {
        v: "5.131",
        ..Vk::new(&sim, &sim.pool_tokens()[0])
    };
    let arr = old
        .ok(
            "groups.getById",
            &[("group_ids", &gids.join(",")), ("fields", group_fields)],
        )
        .await;
    for g in arr.as_array().unwrap() {
        schema.check(
            "groups.getById 5.131 item",
            "groups/objects.json#/definitions/groups_group_full",
            g,
        );
    }
}

#[tokio::test]
async fn every_error_body_validates() {
    let schema = Schema::load();
    let mut config = small_config();
    config.rate_per_second = 3;
    config.flood_threshold = 2;
    config.quotas = vec!["users.get=1".into()];
    let sim = spawn_sim(config).await;
    let named = sim.named();
    let pool = Vk::new(&sim, &sim.pool_tokens()[0]);
    let mut bodies: Vec<Value> = Vec::new();
    bodies.push(pool.call("no.suchMethod", &[]).await); // 3
    bodies.push(Vk::new(&sim, "").call("users.getFollowers", &[]).await); // 5
    bodies.push(
        Vk::new(&sim, sim.revoked_token())
            .call("users.getFollowers", &[])
            .await,
    ); // 5
    bodies.push(
        Vk::new(&sim, sim.banned_token())
            .call("users.getFollowers", &[])
            .await,
    ); // 5
    bodies.push(
        Vk::new(&sim, sim.ip_bound_token())
            .call("users.getFollowers", &[])
            .await,
    ); // 5
    let no_v: Value = reqwest::get(format!("{}/method/users.get?access_token=x", sim.api_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    bodies.push(no_v); // 8
                       // Fresh tokens for the cases added with the strict simulator, so none meets the rate limit of this test's config.
    let graph = sim.graph();
    let mut fresh = (8..sim.users())
        .filter(|&id| graph.user(id).is_some_and(|u| u.deactivated.is_none()))
        .map(|id| sim.user_token(id));
    let a = Vk::new(&sim, &sim.pool_tokens()[1]);
    bodies.push(
        a.call("friends.get", &[("user_id", &named.deleted.to_string())])
            .await,
    ); // 15 (user deactivated)
    bodies.push(
        Vk::new(&sim, &fresh.next().unwrap())
            .call(
                "users.getSubscriptions",
                &[("user_id", &named.deleted.to_string())],
            )
            .await,
    ); // 18
    let no_friends_right = Vk::new(&sim, &fresh.next().unwrap());
    bodies.push(
        no_friends_right
            .call(
                "friends.getMutual",
                &[("target_uid", &named.hub.to_string())],
            )
            .await,
    ); // 15, subcode 1133
    let long_code = format!("return {};", "1+".repeat(40_000) + "1");
    let g = Vk::new(&sim, &fresh.next().unwrap());
    bodies.push(g.call("execute", &[("code", &long_code)]).await); // 12 (code too long)
    bodies.push(
        a.call("friends.get", &[("user_id", &named.closed.to_string())])
            .await,
    ); // 30
    bodies.push(a.call("friends.get", &[("user_id", "abc")]).await); // 113
    bodies.push(pool.call("groups.getById", &[]).await); // 100
                                                         // keep calling: 6 once the window is full, then 9 (flood threshold 2)
    let mut seen_flood = false;
    for _ in 0..6 {
        let body = pool.call("utils.getServerTime", &[]).await;
        let code = body["error"]["error_code"].as_i64();
        if code == Some(6) || code == Some(9) {
            seen_flood |= code == Some(9);
            bodies.push(body);
        }
    }
    assert!(seen_flood);
    let b = Vk::new(&sim, &sim.pool_tokens()[2]);
    b.ok("users.get", &[]).await;
    bodies.push(b.call("users.get", &[]).await); // 29
    bodies.push(b.call("execute", &[("code", "return [1;")]).await); // 12
    let c = Vk::new(&sim, &sim.pool_tokens()[3]);
    bodies.push(
        c.call("wall.post", &[("owner_id", "-999999"), ("message", "x")])
            .await,
    ); // 100
    bodies.push(c.call("groups.getMembers", &[("group_id", "999999")]).await); // 125
    let gids: Vec<String> = (1..=100).map(|i| i.to_string()).collect();
    let d = Vk::new(&sim, sim.user_token(named.open).as_str());
    let groups = d
        .ok(
            "groups.getById",
            &[
                ("group_ids", &gids.join(",")),
                ("fields", "can_post,can_suggest"),
            ],
        )
        .await;
    let closed_group = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["can_post"] == 0 && g["can_suggest"] == 0 && g["is_closed"] == 0)
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    bodies.push(
        d.call(
            "wall.post",
            &[("owner_id", &(-closed_group).to_string()), ("message", "x")],
        )
        .await,
    ); // 214
    let private = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["is_closed"] != 0)
        .unwrap()["id"]
        .to_string();
    bodies.push(d.call("groups.getMembers", &[("group_id", &private)]).await); // 15
    let e = Vk::new(&sim, sim.user_token(named.closed_friend).as_str());
    bodies.push(
        e.call(
            "execute",
            &[(
                "code",
                "var i = 0; while (i < 30) { API.utils.getServerTime({}); i = i + 1; } return 1;",
            )],
        )
        .await,
    ); // 13
    sim_post(&sim, "/sim/faults", json!({"global": {"error10": 1.0}})).await;
    bodies.push(e.call("users.get", &[]).await); // 10
    sim_post(&sim, "/sim/faults", json!({})).await;
    sim_post(&sim, "/sim/captcha", json!({"rate": 1.0})).await;
    let f = Vk::new(&sim, sim.user_token(named.hub).as_str());
    bodies.push(f.call("users.get", &[]).await); // 14
    sim_post(&sim, "/sim/captcha", json!({"rate": 0.0})).await;
    let token = sim.user_token(named.hub);
    sim_post(&sim, "/sim/tokens/expire", json!({"token": token})).await;
    bodies.push(f.call("users.get", &[]).await); // 1117
    bodies.push(
        Vk {
            v: "5.131",
            ..Vk::new(&sim, &token)
        }
        .call("users.get", &[])
        .await,
    ); // 5 expired

    let mut codes: Vec<i64> = Vec::new();
    for body in &bodies {
        let err = body
            .get("error")
            .unwrap_or_else(|| panic!("expected an error body: {body}"));
        let code = err["error_code"].as_i64().expect("error_code");
        schema.check(
            &format!("error {code}"),
            "base/objects.json#/definitions/base_error",
            err,
        );
        assert!(schema.knows_code(code), "errors.json lists code {code}");
        let params = err["request_params"].as_array().expect("request_params");
        assert!(
            params.iter().all(|p| p["key"] != "access_token"),
            "no token in {err}"
        );
        codes.push(code);
    }
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(
        codes,
        vec![3, 5, 6, 8, 9, 10, 12, 13, 14, 15, 18, 29, 30, 100, 113, 125, 214, 1117]
    );
}

#[tokio::test]
async fn posting_responses_and_errors_validate() {
    use crate::posting::{png, post_file};
    let schema = Schema::load();
    let sim = spawn_sim(small_config()).await;
    let n = sim.named_communities();
    let vk = Vk::new(&sim, &sim.user_token(n.admin_user));
    let g = n.suggest.to_string();
    let mut cases: Vec<(&str, String, Value)> = Vec::new();
    let mut add = |what: &'static str, def: &str, body: Value| cases.push((what, resp(def), body));
    let server = vk
        .call("photos.getWallUploadServer", &[("group_id", &g)])
        .await;
    let url = server["response"]["upload_url"]
        .as_str()
        .unwrap()
        .to_string();
    add(
        "photos.getWallUploadServer",
        "photos_getWallUploadServer_response",
        server,
    );
    let up = post_file(&url, "photo", "a.png", &png(1200, 800)).await;
    add(
        "photo upload answer",
        "photos_wall_upload_response",
        json!({ "response": up }),
    );
    let saved = vk
        .call(
            "photos.saveWallPhoto",
            &[
                ("group_id", &g),
                ("server", &up["server"].to_string()),
                ("photo", up["photo"].as_str().unwrap()),
                ("hash", up["hash"].as_str().unwrap()),
            ],
        )
        .await;
    let p = &saved["response"][0];
    let photo = format!(
        "photo{}_{}_{}",
        p["owner_id"],
        p["id"],
        p["access_key"].as_str().unwrap()
    );
    add(
        "photos.saveWallPhoto",
        "photos_saveWallPhoto_response",
        saved.clone(),
    );
    let server = vk
        .call("docs.getWallUploadServer", &[("group_id", &g)])
        .await;
    let url = server["response"]["upload_url"]
        .as_str()
        .unwrap()
        .to_string();
    add(
        "docs.getWallUploadServer",
        "base_getUploadServer_response",
        server,
    );
    let up = post_file(&url, "file", "notes.txt", b"some notes").await;
    add(
        "doc upload answer",
        "docs_doc_upload_response",
        json!({ "response": up }),
    );
    let doc = vk
        .call("docs.save", &[("file", up["file"].as_str().unwrap())])
        .await;
    let d = &doc["response"]["doc"];
    let doc_id = format!(
        "doc{}_{}_{}",
        d["owner_id"],
        d["id"],
        d["access_key"].as_str().unwrap()
    );
    add("docs.save", "docs_save_response", doc.clone());
    let attachments = format!("{photo},{doc_id},https://example.org");
    let posted = vk
        .call(
            "wall.post",
            &[
                ("owner_id", &format!("-{g}")),
                ("message", "suggested"),
                ("attachments", &attachments),
                ("guid", "schema-1"),
            ],
        )
        .await;
    let id = posted["response"]["post_id"].clone();
    add("wall.post suggest", "wall_post_response", posted);
    let signed = vk
        .call(
            "wall.post",
            &[
                ("owner_id", &format!("-{}", n.admin)),
                ("message", "as the community"),
                ("from_group", "1"),
                ("signed", "1"),
            ],
        )
        .await;
    let signed_id = signed["response"]["post_id"].clone();
    add(
        "wall.getById",
        "wall_getById_response",
        vk.call(
            "wall.getById",
            &[("posts", &format!("-{g}_{id},-{}_{signed_id}", n.admin))],
        )
        .await,
    );
    let named: Vec<String> = [
        n.suggest,
        n.admin,
        n.open_wall,
        n.screen_name,
        n.wall_closed,
        n.closed,
        n.private,
        n.deactivated,
    ]
    .iter()
    .map(u32::to_string)
    .collect();
    add(
        "groups.getById with admin fields",
        "groups_getById_object_response",
        vk.call(
            "groups.getById",
            &[
                ("group_ids", &named.join(",")),
                (
                    "fields",
                    "can_post,can_suggest,is_closed,wall,is_member,members_count",
                ),
            ],
        )
        .await,
    );
    for (what, def, body) in &cases {
        assert!(body.get("error").is_none(), "{what}: {body}");
        schema.check(what, def, body);
    }
    let items = &cases
        .iter()
        .find(|(w, _, _)| *w == "wall.getById")
        .unwrap()
        .2["response"]["items"];
    assert_eq!(items.as_array().unwrap().len(), 2);
    // The posting errors: 15 (members only, deactivated), 100, 105, 118, 121, 214, 14.
    let mut bodies = vec![
        vk.call(
            "wall.post",
            &[("owner_id", &format!("-{}", n.private)), ("message", "x")],
        )
        .await,
        vk.call(
            "wall.post",
            &[
                ("owner_id", &format!("-{}", n.deactivated)),
                ("message", "x"),
            ],
        )
        .await,
        vk.call(
            "wall.post",
            &[
                ("owner_id", &format!("-{}", n.wall_closed)),
                ("message", "x"),
            ],
        )
        .await,
        vk.call(
            "wall.post",
            &[("owner_id", &format!("-{g}")), ("attachments", "video1_1")],
        )
        .await,
        vk.call("docs.save", &[("file", "nonsense")]).await,
        vk.call(
            "photos.saveWallPhoto",
            &[
                ("group_id", &g),
                ("server", "1"),
                ("photo", up["file"].as_str().unwrap()),
                ("hash", "x"),
            ],
        )
        .await,
    ];
    let again = post_file(
        vk.ok("photos.getWallUploadServer", &[("group_id", &g)])
            .await["upload_url"]
            .as_str()
            .unwrap(),
        "photo",
        "b.png",
        &png(10, 10),
    )
    .await;
    let save = |server: String, hash: String| {
        let photo = again["photo"].as_str().unwrap().to_string();
        let g = g.clone();
        let vk = &vk;
        async move {
            vk.call(
                "photos.saveWallPhoto",
                &[
                    ("group_id", &g),
                    ("server", &server),
                    ("photo", &photo),
                    ("hash", &hash),
                ],
            )
            .await
        }
    };
    bodies.push(save("1".into(), again["hash"].as_str().unwrap().into()).await); // 118
    bodies.push(save(again["server"].to_string(), "ffff".into()).await); // 121
    sim_post(
        &sim,
        "/sim/captcha",
        json!({"method": "wall.post", "rate": 1.0}),
    )
    .await;
    bodies.push(
        vk.call(
            "wall.post",
            &[("owner_id", &format!("-{g}")), ("message", "x")],
        )
        .await,
    );
    let mut codes = Vec::new();
    for body in &bodies {
        let err = body
            .get("error")
            .unwrap_or_else(|| panic!("expected an error body: {body}"));
        let code = err["error_code"].as_i64().expect("error_code");
        schema.check(
            &format!("error {code}"),
            "base/objects.json#/definitions/base_error",
            err,
        );
        assert!(schema.knows_code(code), "errors.json lists code {code}");
        codes.push(code);
    }
    assert_eq!(codes, vec![15, 15, 214, 100, 105, 100, 118, 121, 14]);
}

#[tokio::test]
async fn wall_comments_likes_and_reposts_validate() {
    let schema = Schema::load();
    let sim = spawn_sim(small_config()).await;
    let n = sim.named_communities();
    let hub = Vk::new(&sim, &sim.user_token(sim.named().hub));
    let owner = format!("-{}", n.busy);
    let newest = hub
        .ok("wall.get", &[("owner_id", &owner), ("count", "1")])
        .await["items"][0]["id"]
        .to_string();
    let long_thread = {
        let page = hub
            .ok(
                "wall.getComments",
                &[("owner_id", &owner), ("post_id", &newest), ("count", "100")],
            )
            .await;
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["thread"]["count"].as_u64().unwrap() > 10)
            .expect("a long thread")["id"]
            .to_string()
    };
    let p = |extra: &[(&'static str, &str)]| {
        let mut v = vec![("owner_id", owner.clone()), ("post_id", newest.clone())];
        v.extend(extra.iter().map(|(k, x)| (*k, x.to_string())));
        v
    };
    // (what, method, parameters)
    type Case = (&'static str, String, Vec<(&'static str, String)>);
    let mut cases: Vec<Case> = vec![
        (
            "wall.get",
            "wall.get".into(),
            vec![("owner_id", owner.clone()), ("count", "100".into())],
        ),
        (
            "wall.getComments with threads and likes",
            "wall.getComments".into(),
            p(&[
                ("thread_items_count", "10"),
                ("need_likes", "1"),
                ("count", "100"),
            ]),
        ),
        (
            "wall.getComments of one thread",
            "wall.getComments".into(),
            p(&[("comment_id", &long_thread), ("need_likes", "1")]),
        ),
        ("wall.getReposts", "wall.getReposts".into(), p(&[])),
    ];
    cases.push((
        "likes.getList",
        "likes.getList".into(),
        vec![
            ("type", "post".into()),
            ("owner_id", owner.clone()),
            ("item_id", newest.clone()),
        ],
    ));
    for (what, method, params) in &cases {
        let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let body = hub.call(method, &params).await;
        assert!(body.get("error").is_none(), "{what}: {body}");
        let def = format!("{}_response", method.replace('.', "_"));
        schema.check(what, &resp(&def), &body);
    }
    // The errors these methods send are VK's shapes too.
    let pool = Vk::new(&sim, &sim.pool_tokens()[0]);
    for (method, params) in [
        ("wall.getReposts", p(&[])),
        ("wall.getComments", p(&[("thread_items_count", "11")])),
    ] {
        let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let body = pool.call(method, &params).await;
        schema.check(
            method,
            "base/objects.json#/definitions/base_error",
            &body["error"],
        );
    }
}
