//! Routing: `POST /api/detect` and `GET /api/health`, matched on the path's ending so REST API
//! stage prefixes and trailing slashes are accepted (see the parent module's docs).

use super::error::{clip, ApiError, METHOD_NOT_ALLOWED, NOT_FOUND};

/// The routes the function answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `POST /api/detect`
    Detect,
    /// `GET /api/health`
    Health,
    /// `GET /api/openapi.json`
    OpenApi,
}

impl Route {
    pub const ALL: [Route; 3] = [Route::Detect, Route::Health, Route::OpenApi];

    /// The one method the route accepts (for an `Allow` header).
    pub fn method(self) -> &'static str {
        match self {
            Route::Detect => "POST",
            Route::Health | Route::OpenApi => "GET",
        }
    }

    /// The route's path, without any stage prefix.
    pub fn path(self) -> &'static str {
        match self {
            Route::Detect => "/api/detect",
            Route::Health => "/api/health",
            Route::OpenApi => "/api/openapi.json",
        }
    }
}

/// The route a path names, whatever the method: the path (query string and trailing
/// slashes ignored) ends with the route's path, so stage prefixes match.
pub fn route_for_path(path: &str) -> Option<Route> {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let path = path.trim_end_matches('/');
    Route::ALL
        .into_iter()
        .find(|r| path.ends_with(r.path()) || path == &r.path()[1..])
}

/// Routes a request: `POST /api/detect`, `GET /api/health` (see the module docs).
/// Unknown path → 404 listing the routes; known path, other method → 405.
pub fn route(method: &str, path: &str) -> Result<Route, ApiError> {
    let Some(route) = route_for_path(path) else {
        let routes: Vec<String> = Route::ALL
            .iter()
            .map(|r| format!("{} {}", r.method(), r.path()))
            .collect();
        return Err(ApiError::new(
            NOT_FOUND,
            format!(
                "no route for path `{}`; routes: {}",
                clip(path, 200),
                routes.join(", ")
            ),
        ));
    };
    if method.eq_ignore_ascii_case(route.method()) {
        Ok(route)
    } else {
        Err(ApiError::new(
            METHOD_NOT_ALLOWED,
            format!(
                "method {} is not allowed on {}; use {}",
                clip(method, 20),
                route.path(),
                route.method()
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_with_stage_prefix_and_trailing_slash() {
        assert_eq!(route("POST", "/api/detect"), Ok(Route::Detect));
        assert_eq!(route("GET", "/api/health"), Ok(Route::Health));
        assert_eq!(route("POST", "/prod/api/detect"), Ok(Route::Detect));
        assert_eq!(route("POST", "/api/detect/"), Ok(Route::Detect));
        assert_eq!(route("GET", "/stage/api/health//"), Ok(Route::Health));
        assert_eq!(route("post", "/api/detect?x=1"), Ok(Route::Detect));
    }

    #[test]
    fn unknown_path_is_404_listing_routes() {
        for path in ["/", "", "/api", "/api/detector", "/apiX/detect/more"] {
            let e = route("GET", path).unwrap_err();
            assert_eq!(e.status, 404, "{path}");
            assert!(e.message.contains("POST /api/detect"), "{}", e.message);
            assert!(e.message.contains("GET /api/health"), "{}", e.message);
        }
    }

    #[test]
    fn wrong_method_is_405_naming_the_allowed_one() {
        let e = route("GET", "/api/detect").unwrap_err();
        assert_eq!(e.status, 405);
        assert!(e.message.contains("use POST"), "{}", e.message);
        let e = route("POST", "/prod/api/health").unwrap_err();
        assert_eq!(e.status, 405);
        assert!(e.message.contains("use GET"), "{}", e.message);
        for method in ["OPTIONS", "HEAD", "PUT", "DELETE"] {
            assert_eq!(route(method, "/api/detect").unwrap_err().status, 405);
        }
    }
}
