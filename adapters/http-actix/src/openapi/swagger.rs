//! Swagger UI, its assets built into the binary (`utoipa-swagger-ui`'s
//! `vendored` feature: nothing is fetched at build or run time).

use actix_web::http::header;
use actix_web::web::{self, Data};
use actix_web::{HttpRequest, HttpResponse, ResponseError};

use crate::error::ApiError;
use crate::handlers::fallback::{method_not_allowed, not_found};

/// Swagger UI at `path` (its assets are built into the binary), showing the
/// document served at `openapi_url`: `GET path` redirects to `path/`, which
/// serves the page; unknown files are `404 {"detail": "Not Found"}`.
pub fn swagger_ui(path: &str, openapi_url: &str) -> actix_web::Scope {
    let path = crate::normalise_prefix(path);
    let config = Data::new(utoipa_swagger_ui::Config::new([openapi_url.to_owned()]));
    let index = format!("{path}/");
    web::scope(&path)
        .app_data(config)
        .service(
            web::resource("")
                .route(web::get().to(move || {
                    let index = index.clone();
                    async move {
                        HttpResponse::PermanentRedirect()
                            .insert_header((header::LOCATION, index))
                            .finish()
                    }
                }))
                .default_service(method_not_allowed("GET")),
        )
        .service(
            web::resource("/{file:.*}")
                .route(web::get().to(swagger_file))
                .default_service(method_not_allowed("GET")),
        )
        .default_service(web::to(not_found))
}

async fn swagger_file(
    req: HttpRequest,
    config: Data<utoipa_swagger_ui::Config<'static>>,
) -> HttpResponse {
    let file = req.match_info().get("file").unwrap_or_default();
    match utoipa_swagger_ui::serve(file, config.into_inner()) {
        Ok(Some(file)) => {
            let mut response = HttpResponse::Ok();
            if file.gzpipped {
                response.insert_header((header::CONTENT_ENCODING, "gzip"));
            }
            response
                .content_type(file.content_type)
                .body(file.bytes.into_owned())
        }
        Ok(None) => ApiError::NotFound.error_response(),
        Err(e) => ApiError::internal(format!("Swagger UI: {e}")).error_response(),
    }
}
