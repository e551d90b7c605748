//! The API's size limits: body bytes and image count (checked before any image is decoded),
//! and S3's own limits on bucket names and keys.

/// Default body limit: 6 MiB, the synchronous Lambda invocation payload limit.
pub const DEFAULT_MAX_BODY_BYTES: usize = 6 * 1024 * 1024;
/// Default maximum number of images in one request.
pub const DEFAULT_MAX_IMAGES: usize = 20;
/// Longest S3 object key S3 accepts, in bytes.
pub const MAX_S3_KEY_BYTES: usize = 1024;
/// Longest bucket name accepted (S3's legacy limit; current names are at most 63).
pub const MAX_S3_BUCKET_BYTES: usize = 255;

/// Limits enforced before any image is decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestLimits {
    /// Largest accepted body, in bytes (413 above). Default 6 MiB.
    pub max_body_bytes: usize,
    /// Most images in one request (413 above). Default 20.
    pub max_images: usize,
}

impl Default for RequestLimits {
    fn default() -> Self {
        Self {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_images: DEFAULT_MAX_IMAGES,
        }
    }
}

impl RequestLimits {
    /// Defaults overridden by the `MAX_BODY_BYTES` and `MAX_IMAGES` environment variables.
    /// A value that is not a positive integer is ignored (the default stays).
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`RequestLimits::from_env`] with the variables read through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let read = |name: &str, default: usize| {
            lookup(name)
                .and_then(|v| v.trim().parse::<usize>().ok())
                .filter(|&n| n > 0)
                .unwrap_or(default)
        };
        Self {
            max_body_bytes: read("MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES),
            max_images: read("MAX_IMAGES", DEFAULT_MAX_IMAGES),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_default_and_env_overrides() {
        let d = RequestLimits::default();
        assert_eq!(d.max_body_bytes, 6 * 1024 * 1024);
        assert_eq!(d.max_images, 20);
        let l = RequestLimits::from_lookup(|name| match name {
            "MAX_BODY_BYTES" => Some(" 1000 ".into()),
            "MAX_IMAGES" => Some("3".into()),
            _ => None,
        });
        assert_eq!((l.max_body_bytes, l.max_images), (1000, 3));
        let l = RequestLimits::from_lookup(|name| match name {
            "MAX_BODY_BYTES" => Some("lots".into()),
            "MAX_IMAGES" => Some("0".into()),
            _ => None,
        });
        assert_eq!(l, RequestLimits::default());
    }
}
