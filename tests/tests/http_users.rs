//! `/api/users/...` over real HTTP: the current user, and administration
//! by superusers (shared/API.md).

use awc::http::Method;
use portcullis_tests::test_app::{
    Body, PASSWORD, SUPERUSER_EMAIL, TestApp, assert_plain_user, assert_user, spawn_app,
};
use serde_json::{Value, json};

const TOO_SHORT: &str = "Password should be at least 8 characters";
const CONTAINS_EMAIL: &str = "Password should not contain e-mail";
const UNKNOWN_ID: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";
const MALFORMED_IDS: [&str; 4] = [
    "not-a-uuid",
    "42",
    "me2",
    "0f8fad5b-d9cb-469f-a165-70867728950",
];

fn user_path(id: &str) -> String {
    format!("/users/{id}")
}

/// Makes `id` verified through the admin route.
async fn make_verified(app: &TestApp, id: &str) {
    let user = app
        .admin_patch(id, &json!({"is_verified": true}))
        .await
        .expect_json(200);
    assert_eq!(user["is_verified"], true);
}

// ---------------------------------------------------------------- /users/me

#[actix_web::test]
async fn get_me_returns_the_current_user() {
    let app = spawn_app().await;
    let (user, token) = app.new_user("Ann@Example.com").await;
    let me = app.me(&token).await.expect_json(200);
    assert_plain_user(&me, "Ann@example.com");
    assert_eq!(me, user);
}

#[actix_web::test]
async fn the_first_superuser_is_active_superuser_verified_and_a_student() {
    let app = spawn_app().await;
    let token = app.superuser_token().await;
    let me = app.me(&token).await.expect_json(200);
    assert_user(&me, SUPERUSER_EMAIL, true, true, true, "student");
}

#[actix_web::test]
async fn get_me_without_a_usable_token_is_401() {
    let app = spawn_app().await;
    app.get("/users/me").await.expect_401();
    app.me("garbage").await.expect_401();
    app.get_with_authorization("/users/me", "Bearer")
        .await
        .expect_401();
    app.get_with_authorization("/users/me", "Bearer ")
        .await
        .expect_401();
    app.get_with_authorization("/users/me", "")
        .await
        .expect_401();
}

#[actix_web::test]
async fn get_me_of_an_inactive_user_is_401() {
    let app = spawn_app().await;
    let (user, token) = app.new_user("ann@example.com").await;
    app.admin_patch(&TestApp::id_of(&user), &json!({"is_active": false}))
        .await
        .expect_json(200);
    app.me(&token).await.expect_401();
    // Reactivated: the deactivation ended the session for good (shared/
    // API.md, "Sessions"); a new login works.
    app.admin_patch(&TestApp::id_of(&user), &json!({"is_active": true}))
        .await
        .expect_json(200);
    app.me(&token).await.expect_401();
    let fresh = app.login_token("ann@example.com", PASSWORD).await;
    assert_eq!(app.me(&fresh).await.expect_json(200), user);
}

#[actix_web::test]
async fn get_me_of_a_deleted_user_is_401() {
    let app = spawn_app().await;
    let (user, token) = app.new_user("ann@example.com").await;
    let root = app.superuser_token().await;
    app.delete(&user_path(&TestApp::id_of(&user)), Some(&root))
        .await
        .expect_empty(204);
    app.me(&token).await.expect_401();
    // A new account with the same address is another user.
    app.register_ok("ann@example.com", PASSWORD).await;
    app.me(&token).await.expect_401();
}

#[actix_web::test]
async fn patch_me_changes_the_password() {
    let app = spawn_app().await;
    let (user, token) = app.new_user("ann@example.com").await;
    let res = app
        .patch_json(
            "/users/me",
            Some(&token),
            &json!({"password": "a brand new password"}),
        )
        .await;
    assert_eq!(res.expect_json(200), user);
    app.login("ann@example.com", PASSWORD)
        .await
        .expect_code("LOGIN_BAD_CREDENTIALS");
    app.login_token("ann@example.com", "a brand new password")
        .await;
    // The change ended every session, the token in hand included
    // (shared/API.md, "Sessions").
    app.me(&token).await.expect_401();
}

#[actix_web::test]
async fn patch_me_enforces_the_password_policy() {
    let app = spawn_app().await;
    let (_, token) = app.new_user("Ann@example.com").await;
    app.patch_json("/users/me", Some(&token), &json!({"password": "short"}))
        .await
        .expect_code_reason("UPDATE_USER_INVALID_PASSWORD", TOO_SHORT);
    app.patch_json(
        "/users/me",
        Some(&token),
        &json!({"password": "my ann@EXAMPLE.com pw"}),
    )
    .await
    .expect_code_reason("UPDATE_USER_INVALID_PASSWORD", CONTAINS_EMAIL);
    app.login_token("ann@example.com", PASSWORD).await;
}

#[actix_web::test]
async fn patch_me_silently_drops_email_role_and_flags() {
    let app = spawn_app().await;
    let (user, token) = app.new_user("ann@example.com").await;
    let res = app
        .patch_json(
            "/users/me",
            Some(&token),
            &json!({
                "email": "other@example.com",
                "role": "admin",
                "is_active": false,
                "is_superuser": true,
                "is_verified": true,
            }),
        )
        .await;
    assert_eq!(res.expect_json(200), user);
    assert_eq!(app.me(&token).await.expect_json(200), user);
    app.login_token("ann@example.com", PASSWORD).await;
    app.login("other@example.com", PASSWORD)
        .await
        .expect_code("LOGIN_BAD_CREDENTIALS");
}

#[actix_web::test]
async fn patch_me_does_not_even_look_at_an_invalid_email_or_role() {
    let app = spawn_app().await;
    let (user, token) = app.new_user("ann@example.com").await;
    for body in [
        json!({"email": "not an email"}),
        json!({"email": 42, "role": "emperor", "is_superuser": "maybe"}),
        json!({"email": "ann@site.test", "password": "a brand new password"}),
    ] {
        let res = app.patch_json("/users/me", Some(&token), &body).await;
        assert_eq!(res.expect_json(200), user, "{body}");
    }
    app.login_token("ann@example.com", "a brand new password")
        .await;
}

#[actix_web::test]
async fn patch_me_with_an_empty_object_or_a_null_password_changes_nothing() {
    let app = spawn_app().await;
    let (user, token) = app.new_user("ann@example.com").await;
    for body in [json!({}), json!({"password": null})] {
        let res = app.patch_json("/users/me", Some(&token), &body).await;
        assert_eq!(res.expect_json(200), user, "{body}");
    }
    app.login_token("ann@example.com", PASSWORD).await;
}

#[actix_web::test]
async fn patch_me_with_a_non_string_password_is_422() {
    let app = spawn_app().await;
    let (_, token) = app.new_user("ann@example.com").await;
    for password in [json!(12345678), json!(true), json!(["a long password"])] {
        app.patch_json("/users/me", Some(&token), &json!({ "password": password }))
            .await
            .expect_422_at("string_type", json!(["body", "password"]));
    }
    app.login_token("ann@example.com", PASSWORD).await;
}

#[actix_web::test]
async fn patch_me_with_a_body_that_is_no_object_is_422() {
    let app = spawn_app().await;
    let (_, token) = app.new_user("ann@example.com").await;
    for body in [json!([1]), json!("password"), json!(null)] {
        app.patch_json("/users/me", Some(&token), &body)
            .await
            .expect_422();
    }
    app.send(
        Method::PATCH,
        "/users/me",
        Some(&token),
        Body::raw("application/json", "{bad"),
    )
    .await
    .expect_422_at("json_invalid", json!(["body", 1]));
    app.send(
        Method::PATCH,
        "/users/me",
        Some(&token),
        Body::raw("text/plain", r#"{"password":"a long password"}"#),
    )
    .await
    .expect_422_at("model_attributes_type", json!(["body"]));
}

#[actix_web::test]
async fn patch_me_without_a_token_is_401_before_the_body_is_judged() {
    let app = spawn_app().await;
    let (_, token) = app.new_user("ann@example.com").await;
    let bodies = [
        Body::raw("application/json", "{bad"),
        Body::raw("text/plain", "whatever"),
        Body::Json(json!({"password": 5})),
        Body::Json(json!([1])),
        Body::Json(json!({"password": "a long password"})),
        Body::Empty,
    ];
    for body in bodies {
        app.send(Method::PATCH, "/users/me", None, body.clone())
            .await
            .expect_401();
        app.send(Method::PATCH, "/users/me", Some("garbage"), body)
            .await
            .expect_401();
    }
    // Nothing changed.
    app.login_token("ann@example.com", PASSWORD).await;
    app.me(&token).await.expect_json(200);
}

#[actix_web::test]
async fn patch_me_of_an_inactive_user_is_401() {
    let app = spawn_app().await;
    let (user, token) = app.new_user("ann@example.com").await;
    app.admin_patch(&TestApp::id_of(&user), &json!({"is_active": false}))
        .await
        .expect_json(200);
    app.patch_json(
        "/users/me",
        Some(&token),
        &json!({"password": "a brand new password"}),
    )
    .await
    .expect_401();
}

// ---------------------------------------------------------------- GET /users/{id}

#[actix_web::test]
async fn get_user_by_id_as_superuser_returns_the_user() {
    let app = spawn_app().await;
    let (user, _) = app.new_user("ann@example.com").await;
    let res = app.admin_get(&TestApp::id_of(&user)).await;
    assert_eq!(res.expect_json(200), user);
}

#[actix_web::test]
async fn get_user_by_id_accepts_uppercase_and_hyphenless_uuids() {
    let app = spawn_app().await;
    let (user, _) = app.new_user("ann@example.com").await;
    let id = TestApp::id_of(&user);
    for spelling in [
        id.to_uppercase(),
        id.replace('-', ""),
        id.replace('-', "").to_uppercase(),
    ] {
        let res = app.admin_get(&spelling).await;
        let got = res.expect_json(200);
        assert_eq!(got, user, "{spelling}");
        assert_eq!(got["id"], json!(id), "the id comes back canonical");
    }
}

#[actix_web::test]
async fn get_user_by_id_without_a_usable_token_is_401_whatever_the_id() {
    let app = spawn_app().await;
    let (user, _) = app.new_user("ann@example.com").await;
    for id in [TestApp::id_of(&user).as_str(), UNKNOWN_ID, "not-a-uuid"] {
        app.get(&user_path(id)).await.expect_401();
        app.get_with_token(&user_path(id), "garbage")
            .await
            .expect_401();
    }
}

#[actix_web::test]
async fn get_user_by_id_as_a_non_superuser_is_403_also_for_unknown_and_malformed_ids() {
    let app = spawn_app().await;
    let (user, token) = app.new_user("ann@example.com").await;
    let own = TestApp::id_of(&user);
    let mut ids = vec![own.as_str(), UNKNOWN_ID];
    ids.extend(MALFORMED_IDS);
    for id in ids {
        app.get_with_token(&user_path(id), &token)
            .await
            .expect_403();
    }
}

#[actix_web::test]
async fn get_user_by_id_as_superuser_is_404_for_unknown_and_malformed_ids() {
    let app = spawn_app().await;
    let root = app.superuser_token().await;
    let mut ids = vec![UNKNOWN_ID];
    ids.extend(MALFORMED_IDS);
    for id in ids {
        app.get_with_token(&user_path(id), &root).await.expect_404();
    }
}

#[actix_web::test]
async fn an_inactive_superusers_token_is_401_on_admin_routes() {
    let app = spawn_app().await;
    let (admin, admin_token) = app.new_user("admin@example.com").await;
    let admin_id = TestApp::id_of(&admin);
    app.admin_patch(&admin_id, &json!({"is_superuser": true}))
        .await
        .expect_json(200);
    let root = app.superuser_token().await;
    let root_id = TestApp::id_of(&app.me(&root).await.expect_json(200));
    app.get_with_token(&user_path(&root_id), &admin_token)
        .await
        .expect_json(200);
    app.admin_patch(&admin_id, &json!({"is_active": false}))
        .await
        .expect_json(200);
    app.get_with_token(&user_path(&root_id), &admin_token)
        .await
        .expect_401();
    app.patch_json(&user_path(&root_id), Some(&admin_token), &json!({}))
        .await
        .expect_401();
    app.delete(&user_path(UNKNOWN_ID), Some(&admin_token))
        .await
        .expect_401();
}

#[actix_web::test]
async fn rights_come_from_the_stored_user_at_each_request() {
    let app = spawn_app().await;
    let (ann, ann_token) = app.new_user("ann@example.com").await;
    let ann_id = TestApp::id_of(&ann);
    app.get_with_token(&user_path(&ann_id), &ann_token)
        .await
        .expect_403();
    app.admin_patch(&ann_id, &json!({"is_superuser": true}))
        .await
        .expect_json(200);
    // The same token, now with superuser rights.
    let me = app
        .get_with_token(&user_path(&ann_id), &ann_token)
        .await
        .expect_json(200);
    assert_user(&me, "ann@example.com", true, true, false, "student");
    app.admin_patch(&ann_id, &json!({"is_superuser": false}))
        .await
        .expect_json(200);
    app.get_with_token(&user_path(&ann_id), &ann_token)
        .await
        .expect_403();
}

// ---------------------------------------------------------------- PATCH /users/{id}

#[actix_web::test]
async fn patch_user_as_superuser_sets_flags_and_role() {
    let app = spawn_app().await;
    let (user, _) = app.new_user("ann@example.com").await;
    let id = TestApp::id_of(&user);
    let res = app
        .admin_patch(
            &id,
            &json!({
                "is_active": false,
                "is_superuser": true,
                "is_verified": true,
                "role": "instructor",
            }),
        )
        .await;
    let changed = res.expect_json(200);
    assert_user(&changed, "ann@example.com", false, true, true, "instructor");
    assert_eq!(changed["id"], json!(id));
    assert_eq!(app.admin_get(&id).await.expect_json(200), changed);
    for role in ["admin", "student", "instructor"] {
        let got = app
            .admin_patch(&id, &json!({ "role": role }))
            .await
            .expect_json(200);
        assert_eq!(got["role"], role);
    }
}

#[actix_web::test]
async fn patch_user_accepts_uppercase_and_hyphenless_uuids() {
    let app = spawn_app().await;
    let (user, _) = app.new_user("ann@example.com").await;
    let id = TestApp::id_of(&user);
    let got = app
        .admin_patch(
            &id.replace('-', "").to_uppercase(),
            &json!({"role": "admin"}),
        )
        .await
        .expect_json(200);
    assert_eq!(got["id"], json!(id));
    assert_eq!(got["role"], "admin");
}

#[actix_web::test]
async fn patch_user_role_must_be_one_of_the_three_roles() {
    let app = spawn_app().await;
    let (user, _) = app.new_user("ann@example.com").await;
    let id = TestApp::id_of(&user);
    for role in [
        json!("owner"),
        json!("Admin"),
        json!("ADMIN"),
        json!(""),
        json!(2),
    ] {
        let entry = app
            .admin_patch(&id, &json!({ "role": role }))
            .await
            .expect_422_at("literal_error", json!(["body", "role"]));
        assert_eq!(entry["input"], role);
    }
    assert_eq!(app.admin_get(&id).await.expect_json(200), user);
}

#[actix_web::test]
async fn patch_user_null_fields_leave_things_unchanged() {
    let app = spawn_app().await;
    let (user, _) = app.new_user("ann@example.com").await;
    let id = TestApp::id_of(&user);
    for body in [
        json!({"is_superuser": null}),
        json!({"is_active": null}),
        json!({"is_verified": null}),
        json!({"role": null}),
        json!({"email": null}),
        json!({"password": null}),
        json!({
            "email": null, "password": null, "is_active": null,
            "is_superuser": null, "is_verified": null, "role": null,
        }),
        json!({}),
    ] {
        let res = app.admin_patch(&id, &body).await;
        assert_eq!(res.expect_json(200), user, "{body}");
    }
    app.login_token("ann@example.com", PASSWORD).await;
}

#[actix_web::test]
async fn patch_user_ignores_unknown_fields() {
    let app = spawn_app().await;
    let (user, _) = app.new_user("ann@example.com").await;
    let id = TestApp::id_of(&user);
    let res = app
        .admin_patch(
            &id,
            &json!({"id": UNKNOWN_ID, "hashed_password": "x", "nickname": "a"}),
        )
        .await;
    assert_eq!(res.expect_json(200), user);
    app.login_token("ann@example.com", PASSWORD).await;
}

#[actix_web::test]
async fn patch_user_with_mistyped_flags_is_422() {
    let app = spawn_app().await;
    let (user, _) = app.new_user("ann@example.com").await;
    let id = TestApp::id_of(&user);
    for (field, value) in [
        ("is_active", json!("maybe")),
        ("is_superuser", json!([true])),
        ("is_verified", json!({"yes": true})),
        ("is_active", json!(2)),
    ] {
        let mut body = serde_json::Map::new();
        body.insert(field.to_owned(), value.clone());
        app.admin_patch(&id, &Value::Object(body))
            .await
            .expect_422()
            .iter()
            .for_each(|e| assert_eq!(e["loc"], json!(["body", field]), "{e}"));
    }
    app.admin_patch(&id, &json!({"password": 12345678}))
        .await
        .expect_422_at("string_type", json!(["body", "password"]));
    assert_eq!(app.admin_get(&id).await.expect_json(200), user);
}

#[actix_web::test]
async fn patch_user_with_a_malformed_body_is_422() {
    let app = spawn_app().await;
    let (user, _) = app.new_user("ann@example.com").await;
    let root = app.superuser_token().await;
    let path = user_path(&TestApp::id_of(&user));
    app.send(
        Method::PATCH,
        &path,
        Some(&root),
        Body::raw("application/json", "{bad"),
    )
    .await
    .expect_422_at("json_invalid", json!(["body", 1]));
    app.send(
        Method::PATCH,
        &path,
        Some(&root),
        Body::raw("text/plain", r#"{"role":"admin"}"#),
    )
    .await
    .expect_422_at("model_attributes_type", json!(["body"]));
    app.patch_json(&path, Some(&root), &json!([1]))
        .await
        .expect_422_at("model_attributes_type", json!(["body"]));
}

#[actix_web::test]
async fn patch_user_email_change_normalises_and_resets_is_verified() {
    let app = spawn_app().await;
    let (user, token) = app.new_user("ann@example.com").await;
    let id = TestApp::id_of(&user);
    make_verified(&app, &id).await;
    let changed = app
        .admin_patch(&id, &json!({"email": "  Ann.New@EXAMPLE.com "}))
        .await
        .expect_json(200);
    assert_user(
        &changed,
        "Ann.New@example.com",
        true,
        false,
        false,
        "student",
    );
    assert_eq!(changed["id"], json!(id));
    app.login("ann@example.com", PASSWORD)
        .await
        .expect_code("LOGIN_BAD_CREDENTIALS");
    app.login_token("ann.new@example.com", PASSWORD).await;
    // The old access token names the user by id: it still works.
    assert_eq!(app.me(&token).await.expect_json(200), changed);
}

#[actix_web::test]
async fn patch_user_email_change_keeps_is_verified_when_the_same_body_sets_it() {
    let app = spawn_app().await;
    let (user, _) = app.new_user("ann@example.com").await;
    let id = TestApp::id_of(&user);
    let changed = app
        .admin_patch(
            &id,
            &json!({"email": "ann2@example.com", "is_verified": true}),
        )
        .await
        .expect_json(200);
    assert_user(&changed, "ann2@example.com", true, false, true, "student");

    // Whatever the order of the keys in the body.
    let root = app.superuser_token().await;
    let changed = app
        .send(
            Method::PATCH,
            &user_path(&id),
            Some(&root),
            Body::raw(
                "application/json",
                r#"{"is_verified": true, "email": "ann3@example.com"}"#,
            ),
        )
        .await
        .expect_json(200);
    assert_user(&changed, "ann3@example.com", true, false, true, "student");

    let changed = app
        .admin_patch(
            &id,
            &json!({"email": "ann4@example.com", "is_verified": false}),
        )
        .await
        .expect_json(200);
    assert_user(&changed, "ann4@example.com", true, false, false, "student");
}

#[actix_web::test]
async fn patch_user_with_the_same_address_keeps_verification_and_stores_a_new_spelling() {
    let app = spawn_app().await;
    let (user, _) = app.new_user("ann@example.com").await;
    let id = TestApp::id_of(&user);
    make_verified(&app, &id).await;
    let verified = app.admin_get(&id).await.expect_json(200);
    assert_eq!(verified["is_verified"], true, "{verified}");
    // The very same address changes nothing.
    let res = app
        .admin_patch(&id, &json!({"email": "ann@example.com"}))
        .await;
    assert_eq!(res.expect_json(200), verified);
    assert_eq!(app.admin_get(&id).await.expect_json(200), verified);
    // Another spelling of the same address is the same address: no clash
    // with itself, verification stays, and the new spelling is what is
    // stored from now on.
    let mut respelled = verified.clone();
    respelled["email"] = json!("ANN@example.com");
    let res = app
        .admin_patch(&id, &json!({"email": "ANN@example.com"}))
        .await;
    assert_eq!(res.expect_json(200), respelled);
    assert_eq!(app.admin_get(&id).await.expect_json(200), respelled);
    // and the account answers to any spelling
    app.login_token("ann@example.com", PASSWORD).await;
    app.login_token("ANN@example.com", PASSWORD).await;
}

#[actix_web::test]
async fn patch_user_email_taken_by_another_user_case_insensitively_is_400() {
    let app = spawn_app().await;
    let (ann, _) = app.new_user("ann@example.com").await;
    app.register_ok("Bob@example.com", PASSWORD).await;
    let id = TestApp::id_of(&ann);
    for taken in ["Bob@example.com", "bob@EXAMPLE.com", "BOB@example.com"] {
        app.admin_patch(&id, &json!({ "email": taken }))
            .await
            .expect_code("UPDATE_USER_EMAIL_ALREADY_EXISTS");
    }
    app.admin_patch(&id, &json!({ "email": SUPERUSER_EMAIL }))
        .await
        .expect_code("UPDATE_USER_EMAIL_ALREADY_EXISTS");
    assert_eq!(app.admin_get(&id).await.expect_json(200), ann);
}

#[actix_web::test]
async fn patch_user_with_an_invalid_email_is_422() {
    let app = spawn_app().await;
    let (user, _) = app.new_user("ann@example.com").await;
    let id = TestApp::id_of(&user);
    for bad in [
        "ann@site.test",
        "ann@localhost",
        "not an email",
        "ann@example",
    ] {
        app.admin_patch(&id, &json!({ "email": bad }))
            .await
            .expect_422_at("value_error", json!(["body", "email"]));
    }
    assert_eq!(app.admin_get(&id).await.expect_json(200), user);
}

#[actix_web::test]
async fn patch_user_sets_the_password_under_the_policy() {
    let app = spawn_app().await;
    let (user, _) = app.new_user("ann@example.com").await;
    let id = TestApp::id_of(&user);
    app.admin_patch(&id, &json!({"password": "short"}))
        .await
        .expect_code_reason("UPDATE_USER_INVALID_PASSWORD", TOO_SHORT);
    app.admin_patch(&id, &json!({"password": "ANN@example.com 123"}))
        .await
        .expect_code_reason("UPDATE_USER_INVALID_PASSWORD", CONTAINS_EMAIL);
    app.login_token("ann@example.com", PASSWORD).await;
    let res = app
        .admin_patch(&id, &json!({"password": "set by the admin"}))
        .await;
    assert_eq!(res.expect_json(200), user);
    app.login("ann@example.com", PASSWORD)
        .await
        .expect_code("LOGIN_BAD_CREDENTIALS");
    app.login_token("ann@example.com", "set by the admin").await;
}

#[actix_web::test]
async fn patch_user_checks_401_then_403_then_404() {
    let app = spawn_app().await;
    let (user, token) = app.new_user("ann@example.com").await;
    let own = TestApp::id_of(&user);
    let body = json!({"role": "admin"});
    let mut ids = vec![own.as_str(), UNKNOWN_ID];
    ids.extend(MALFORMED_IDS);
    for id in &ids {
        app.patch_json(&user_path(id), None, &body)
            .await
            .expect_401();
        app.patch_json(&user_path(id), Some("garbage"), &body)
            .await
            .expect_401();
        app.patch_json(&user_path(id), Some(&token), &body)
            .await
            .expect_403();
    }
    let root = app.superuser_token().await;
    for id in ids.iter().skip(1) {
        app.patch_json(&user_path(id), Some(&root), &body)
            .await
            .expect_404();
    }
    // Nobody promoted themselves on the way.
    assert_eq!(app.me(&token).await.expect_json(200), user);
}

#[actix_web::test]
async fn patch_user_on_an_unknown_id_is_404_before_the_body_is_judged() {
    let app = spawn_app().await;
    let root = app.superuser_token().await;
    app.patch_json(
        &user_path(UNKNOWN_ID),
        Some(&root),
        &json!({"role": "owner"}),
    )
    .await
    .expect_404();
}

#[actix_web::test]
async fn a_superuser_can_patch_themselves() {
    let app = spawn_app().await;
    let root = app.superuser_token().await;
    let me = app.me(&root).await.expect_json(200);
    let id = TestApp::id_of(&me);
    let changed = app
        .patch_json(&user_path(&id), Some(&root), &json!({"role": "admin"}))
        .await
        .expect_json(200);
    assert_user(&changed, SUPERUSER_EMAIL, true, true, true, "admin");
}

// ---------------------------------------------------------------- DELETE /users/{id}

#[actix_web::test]
async fn delete_user_as_superuser_answers_204_empty_and_the_user_is_gone() {
    let app = spawn_app().await;
    let (user, token) = app.new_user("ann@example.com").await;
    let id = TestApp::id_of(&user);
    let root = app.superuser_token().await;
    app.delete(&user_path(&id), Some(&root))
        .await
        .expect_empty(204);
    app.get_with_token(&user_path(&id), &root)
        .await
        .expect_404();
    app.delete(&user_path(&id), Some(&root)).await.expect_404();
    app.me(&token).await.expect_401();
    app.login("ann@example.com", PASSWORD)
        .await
        .expect_code("LOGIN_BAD_CREDENTIALS");
    // The address is free again.
    let again = app.register_ok("ann@example.com", PASSWORD).await;
    assert_ne!(again["id"], user["id"]);
}

#[actix_web::test]
async fn delete_user_accepts_uppercase_and_hyphenless_uuids() {
    let app = spawn_app().await;
    let (user, _) = app.new_user("ann@example.com").await;
    let id = TestApp::id_of(&user);
    let root = app.superuser_token().await;
    app.delete(&user_path(&id.replace('-', "").to_uppercase()), Some(&root))
        .await
        .expect_empty(204);
    app.get_with_token(&user_path(&id), &root)
        .await
        .expect_404();
}

#[actix_web::test]
async fn delete_yourself_is_403_with_its_own_detail() {
    let app = spawn_app().await;
    let root = app.superuser_token().await;
    let id = TestApp::id_of(&app.me(&root).await.expect_json(200));
    for spelling in [id.clone(), id.to_uppercase(), id.replace('-', "")] {
        let res = app.delete(&user_path(&spelling), Some(&root)).await;
        assert_eq!(
            res.expect_json(403),
            json!({"detail": "Admins cannot delete their own account"})
        );
    }
    app.me(&root).await.expect_json(200);
}

#[actix_web::test]
async fn delete_user_checks_401_then_403_then_404() {
    let app = spawn_app().await;
    let (user, token) = app.new_user("ann@example.com").await;
    let own = TestApp::id_of(&user);
    let mut ids = vec![own.as_str(), UNKNOWN_ID];
    ids.extend(MALFORMED_IDS);
    for id in &ids {
        app.delete(&user_path(id), None).await.expect_401();
        app.delete(&user_path(id), Some("garbage"))
            .await
            .expect_401();
        app.delete(&user_path(id), Some(&token)).await.expect_403();
    }
    let root = app.superuser_token().await;
    for id in ids.iter().skip(1) {
        app.delete(&user_path(id), Some(&root)).await.expect_404();
    }
    app.me(&token).await.expect_json(200);
}
