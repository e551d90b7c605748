//! AWS Signature Version 4 for requests to a deployed API whose routes use `AWS_IAM`
//! authorization (the template's default `AuthMode`): service `execute-api`, credentials from
//! the standard AWS chain (environment, shared config and credentials files with
//! `AWS_PROFILE`, web identity, container and instance roles), signed by the AWS SDK's own
//! signer (`aws-sigv4`).

use std::time::SystemTime;

use aws_config::{BehaviorVersion, Region};
use aws_credential_types::provider::ProvideCredentials;
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

/// The service name API Gateway checks signatures against.
pub const SERVICE: &str = "execute-api";

/// Signs requests with one set of credentials for one region.
#[derive(Clone, Debug)]
pub struct Signer {
    identity: Identity,
    /// Kept to tell the user when temporary credentials have run out.
    expiry: Option<SystemTime>,
    region: String,
}

impl Signer {
    /// Credentials from the standard chain, for `region` if given, else the chain's region
    /// (`AWS_REGION`, `AWS_DEFAULT_REGION`, the profile), else the region in an API Gateway
    /// host name (`{api-id}.execute-api.{region}.amazonaws.com`).
    pub fn from_environment(region: Option<&str>, endpoint: &str) -> Result<Signer, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("--sigv4: cannot start the credentials runtime: {e}"))?;
        runtime.block_on(async {
            let region = match region {
                Some(r) => Some(r.to_string()),
                None => environment_region().or_else(|| region_of_host(endpoint)),
            }
            .ok_or_else(|| {
                format!(
                    "--sigv4: no region: pass --region, set AWS_REGION, or use an \
                     execute-api URL ({endpoint} names none)"
                )
            })?;
            let http = aws_smithy_http_client::Builder::new()
                .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                    aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
                ))
                .build_https();
            let config = aws_config::defaults(BehaviorVersion::latest())
                .http_client(http)
                .region(Region::new(region.clone()))
                .load()
                .await;
            let provider = config
                .credentials_provider()
                .ok_or("--sigv4: the AWS configuration has no credentials provider")?;
            let credentials = provider.provide_credentials().await.map_err(|e| {
                format!(
                    "--sigv4: no AWS credentials (set AWS_ACCESS_KEY_ID and \
                     AWS_SECRET_ACCESS_KEY, or AWS_PROFILE): {e}"
                )
            })?;
            Ok(Signer::new(credentials, region))
        })
    }

    pub fn new(credentials: Credentials, region: String) -> Signer {
        Signer {
            expiry: credentials.expiry(),
            identity: credentials.into(),
            region,
        }
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    /// The headers that sign this request (`authorization`, `x-amz-date`, and
    /// `x-amz-security-token` for temporary credentials), to add to it as they are.
    /// `headers` are the request's other headers (all of them are signed).
    pub fn sign(
        &self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<Vec<(String, String)>, String> {
        self.sign_at(method, url, headers, body, SystemTime::now())
    }

    fn sign_at(
        &self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: &[u8],
        time: SystemTime,
    ) -> Result<Vec<(String, String)>, String> {
        if let Some(expiry) = self.expiry.filter(|e| *e <= time) {
            let ago = time.duration_since(expiry).unwrap_or_default().as_secs();
            return Err(format!(
                "--sigv4: the AWS credentials expired {ago} s ago; refresh them and run again"
            ));
        }
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region(&self.region)
            .name(SERVICE)
            .time(time)
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| format!("--sigv4: {e}"))?
            .into();
        let request = SignableRequest::new(
            method,
            url,
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            SignableBody::Bytes(body),
        )
        .map_err(|e| format!("--sigv4: cannot sign a request to {url}: {e}"))?;
        let (instructions, _signature) = sign(request, &params)
            .map_err(|e| format!("--sigv4: cannot sign a request to {url}: {e}"))?
            .into_parts();
        let (signed_headers, _query) = instructions.into_parts();
        Ok(signed_headers
            .into_iter()
            .map(|h| (h.name().to_string(), h.value().to_string()))
            .collect())
    }
}

fn environment_region() -> Option<String> {
    ["AWS_REGION", "AWS_DEFAULT_REGION"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
}

/// `us-east-1` from `https://abc123.execute-api.us-east-1.amazonaws.com/api/detect`.
fn region_of_host(url: &str) -> Option<String> {
    let host = url.split("://").nth(1)?.split(['/', ':', '?']).next()?;
    let mut labels = host.split('.');
    labels.find(|l| *l == "execute-api")?;
    labels
        .next()
        .filter(|r| !r.is_empty())
        .map(|r| r.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn signer(token: Option<&str>, expiry: Option<SystemTime>) -> Signer {
        let credentials = Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            token.map(str::to_string),
            expiry,
            "test",
        );
        Signer::new(credentials, "us-east-1".into())
    }

    fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn region_from_an_api_gateway_host() {
        let url = "https://abc123.execute-api.eu-west-1.amazonaws.com/api/detect";
        assert_eq!(region_of_host(url).as_deref(), Some("eu-west-1"));
        assert_eq!(region_of_host("http://127.0.0.1:9000/api/detect"), None);
        assert_eq!(region_of_host("not a url"), None);
    }

    #[test]
    fn signs_host_content_type_and_date_for_execute_api() {
        // 2015-08-30T12:36:00Z, the date of AWS's published SigV4 test suite.
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_440_938_160);
        let headers = vec![("content-type".to_string(), "image/jpeg".to_string())];
        let url = "https://abc.execute-api.us-east-1.amazonaws.com/api/detect?id=a.jpg";
        let signed = signer(None, None)
            .sign_at("POST", url, &headers, b"body", time)
            .unwrap();
        assert_eq!(header(&signed, "x-amz-date"), Some("20150830T123600Z"));
        let auth = header(&signed, "authorization").expect("authorization header");
        assert!(
            auth.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/execute-api/aws4_request, \
                 SignedHeaders=content-type;host;x-amz-date, Signature="
            ),
            "{auth}"
        );
        assert_eq!(header(&signed, "x-amz-security-token"), None);
        // The body is part of what is signed.
        let other = signer(None, None)
            .sign_at("POST", url, &headers, b"other", time)
            .unwrap();
        assert_ne!(header(&other, "authorization"), Some(auth));
    }

    #[test]
    fn temporary_credentials_send_their_token_and_refuse_once_expired() {
        let now = SystemTime::now();
        let url = "https://abc.execute-api.us-east-1.amazonaws.com/api/health";
        let fresh = signer(Some("TOKEN"), Some(now + Duration::from_secs(600)));
        let signed = fresh.sign_at("GET", url, &[], b"", now).unwrap();
        assert_eq!(header(&signed, "x-amz-security-token"), Some("TOKEN"));
        let stale = signer(Some("TOKEN"), Some(now - Duration::from_secs(5)));
        let err = stale.sign_at("GET", url, &[], b"", now).unwrap_err();
        assert!(err.contains("expired"), "{err}");
    }
}
