//! A deployment's own user fields (`USER_FIELDS`) over real HTTP, on the
//! store `PORTCULLIS_TEST_STORE` names: real columns, rendered at the top
//! level of the user, accepted by who may write them, judged with
//! pydantic's 422s, shown in the OpenAPI document.

use portcullis_tests::test_app::*;
use serde_json::{Value, json};

const FIELDS: &str = r#"{
    "first_name": {"type": "string", "max_length": 5, "nullable": true, "writable_by": "user"},
    "credits": {"type": "integer", "default": 10, "writable_by": "admin"},
    "newsletter": {"type": "boolean", "default": false, "writable_by": "user"}
}"#;

async fn app() -> TestApp {
    spawn_app_with([("USER_FIELDS", FIELDS)]).await
}

fn without_id(user: &Value) -> Value {
    let mut user = user.clone();
    user.as_object_mut().map(|u| u.remove("id"));
    user
}

#[actix_web::test]
async fn register_takes_user_fields_ignores_admin_ones_and_renders_them_all() {
    let app = app().await;
    let res = app
        .post_json(
            "/auth/register",
            &json!({
                "email": "ann@example.com", "password": PASSWORD,
                "first_name": "Ann", "newsletter": "yes",
                "credits": 1000, "is_superuser": true, "unknown": [1]
            }),
        )
        .await;
    let user = res.expect_json(201);
    assert_eq!(
        without_id(&user),
        json!({
            "email": "ann@example.com", "is_active": true, "is_superuser": false,
            "is_verified": false, "role": "student",
            "first_name": "Ann", "credits": 10, "newsletter": true
        })
    );
    // Stored: read back through another route, after a fresh login.
    let token = app.login_token("ann@example.com", PASSWORD).await;
    assert_eq!(app.me(&token).await.expect_json(200), user);
    let id = TestApp::id_of(&user);
    assert_eq!(app.admin_get(&id).await.expect_json(200), user);

    // Absent fields take their default.
    let bo = app.register_ok("bo@example.com", PASSWORD).await;
    assert_eq!(
        (&bo["first_name"], &bo["credits"], &bo["newsletter"]),
        (&json!(null), &json!(10), &json!(false))
    );
}

#[actix_web::test]
async fn bad_field_values_are_pydantic_422s_listed_after_the_built_in_fields() {
    let app = app().await;
    let res = app
        .post_json(
            "/auth/register",
            &json!({"email": "ann@example.com", "first_name": "Annabel", "newsletter": 2}),
        )
        .await;
    assert_eq!(
        res.expect_json(422),
        json!({"detail": [
            {"type": "missing", "loc": ["body", "password"], "msg": "Field required",
             "input": {"email": "ann@example.com", "first_name": "Annabel", "newsletter": 2}},
            {"type": "string_too_long", "loc": ["body", "first_name"],
             "msg": "String should have at most 5 characters", "input": "Annabel",
             "ctx": {"max_length": 5}},
            {"type": "bool_parsing", "loc": ["body", "newsletter"],
             "msg": "Input should be a valid boolean, unable to interpret input", "input": 2},
        ]})
    );
    app.post_json(
        "/auth/register",
        &json!({"email": "ann@example.com", "password": PASSWORD, "first_name": 5}),
    )
    .await
    .expect_422_at("string_type", json!(["body", "first_name"]));
    app.post_json(
        "/auth/register",
        &json!({"email": "ann@example.com", "password": PASSWORD, "newsletter": null}),
    )
    .await
    .expect_422_at("bool_type", json!(["body", "newsletter"]));
    // NUL: pydantic takes it and PostgreSQL then fails; here it is a 422
    // on every store, never a 503.
    app.post_json(
        "/auth/register",
        &json!({"email": "ann@example.com", "password": PASSWORD, "first_name": "a\u{0}b"}),
    )
    .await
    .expect_422_at("value_error", json!(["body", "first_name"]));
    // Nothing was stored by the refused requests.
    app.login("ann@example.com", PASSWORD)
        .await
        .expect_code("LOGIN_BAD_CREDENTIALS");
}

#[actix_web::test]
async fn patch_me_writes_user_fields_only_and_leaves_the_others() {
    let app = app().await;
    app.post_json(
        "/auth/register",
        &json!({"email": "ann@example.com", "password": PASSWORD, "first_name": "Ann", "newsletter": true}),
    )
    .await
    .expect_json(201);
    let token = app.login_token("ann@example.com", PASSWORD).await;

    // An admin-only field is ignored, even a malformed value of it.
    let user = app
        .patch_json(
            "/users/me",
            Some(&token),
            &json!({"first_name": null, "credits": "lots", "role": "admin"}),
        )
        .await
        .expect_json(200);
    assert_eq!(
        (
            &user["first_name"],
            &user["credits"],
            &user["newsletter"],
            &user["role"]
        ),
        (&json!(null), &json!(10), &json!(true), &json!("student"))
    );
    assert_eq!(app.me(&token).await.expect_json(200), user);

    app.patch_json("/users/me", Some(&token), &json!({"first_name": "Annabel"}))
        .await
        .expect_422_at("string_too_long", json!(["body", "first_name"]));
    assert_eq!(
        app.me(&token).await.expect_json(200)["first_name"],
        json!(null)
    );
}

#[actix_web::test]
async fn an_admin_writes_every_field_and_only_the_fields_given() {
    let app = app().await;
    let (user, _) = app.new_user("ann@example.com").await;
    let id = TestApp::id_of(&user);
    let patched = app
        .admin_patch(&id, &json!({"credits": "42", "newsletter": "on"}))
        .await
        .expect_json(200);
    assert_eq!(
        (
            &patched["credits"],
            &patched["newsletter"],
            &patched["first_name"]
        ),
        (&json!(42), &json!(true), &json!(null))
    );
    let patched = app
        .admin_patch(&id, &json!({"first_name": "Ann"}))
        .await
        .expect_json(200);
    assert_eq!(
        (
            &patched["credits"],
            &patched["newsletter"],
            &patched["first_name"]
        ),
        (&json!(42), &json!(true), &json!("Ann"))
    );
    for (value, kind) in [
        (json!("x"), "int_parsing"),
        (json!(1.5), "int_from_float"),
        (json!(2_147_483_648_i64), "less_than_equal"),
        (json!(null), "int_type"),
    ] {
        app.admin_patch(&id, &json!({ "credits": value }))
            .await
            .expect_422_at(kind, json!(["body", "credits"]));
    }
    assert_eq!(
        app.admin_get(&id).await.expect_json(200)["credits"],
        json!(42)
    );
}

#[actix_web::test]
async fn the_document_shows_the_fields_where_each_is_accepted() {
    let app = app().await;
    let doc = app.get_raw("/openapi.json").await.expect_json(200);
    let props = |schema: &str| -> Vec<String> {
        let mut keys: Vec<String> = doc["components"]["schemas"][schema]["properties"]
            .as_object()
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        keys.retain(|k| ["first_name", "credits", "newsletter"].contains(&k.as_str()));
        keys.sort();
        keys
    };
    assert_eq!(props("UserRead"), ["credits", "first_name", "newsletter"]);
    assert_eq!(props("UserUpdate"), ["credits", "first_name", "newsletter"]);
    assert_eq!(props("UserCreate"), ["first_name", "newsletter"]);
    assert_eq!(props("UserMeUpdate"), ["first_name", "newsletter"]);
    let first_name = &doc["components"]["schemas"]["UserRead"]["properties"]["first_name"];
    assert_eq!(first_name["type"], json!(["string", "null"]));
    assert_eq!(first_name["maxLength"], json!(5));
}
