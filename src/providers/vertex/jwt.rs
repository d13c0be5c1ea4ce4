//! The signed JWT a service account trades for an access token (Google's
//! "JWT bearer" grant). A JWT is only base64url JSON plus an RS256 signature,
//! so ring signs it directly from the key file's PKCS#8 key: no JWT crate and
//! no `rsa` crate (RUSTSEC-2023-0071) in the build.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{self, RsaKeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

use super::{ServiceAccount, VertexAuthError};

/// The OAuth scope Vertex AI calls need.
pub const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// How long an assertion is valid; Google accepts at most an hour.
pub const ASSERTION_LIFETIME_SECS: u64 = 3600;

const PEM_BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
const PEM_END: &str = "-----END PRIVATE KEY-----";

#[derive(Serialize)]
struct Header<'a> {
    alg: &'a str,
    typ: &'a str,
    kid: &'a str,
}

#[derive(Deserialize)]
struct ReceivedHeader {
    alg: String,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
}

/// The `header.claims.signature` assertion for a token request at `now_unix`.
pub fn signed_assertion(sa: &ServiceAccount, now_unix: u64) -> Result<String, VertexAuthError> {
    let header = Header {
        alg: "RS256",
        typ: "JWT",
        kid: &sa.private_key_id,
    };
    let claims = Claims {
        iss: &sa.client_email,
        scope: CLOUD_PLATFORM_SCOPE,
        aud: &sa.token_uri,
        iat: now_unix,
        exp: now_unix + ASSERTION_LIFETIME_SECS,
    };
    let signing_input = format!("{}.{}", encode_json(&header)?, encode_json(&claims)?);
    let key_pair = key_pair(sa)?;
    let mut signature = vec![0; key_pair.public().modulus_len()];
    key_pair
        .sign(
            &signature::RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            signing_input.as_bytes(),
            &mut signature,
        )
        .map_err(|_| VertexAuthError::Signing)?;
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    ))
}

/// Checks an assertion's RS256 signature against a PKCS#1 `RSAPublicKey`
/// (DER, as [`public_key_der`] gives it) and returns its claims. It does not
/// judge the claims: that is the caller's business (a token endpoint, or a
/// test standing in for one).
pub fn verify_assertion(
    jwt: &str,
    public_key_der: &[u8],
) -> Result<serde_json::Value, VertexAuthError> {
    let invalid = |why: &str| VertexAuthError::InvalidJwt(why.to_string());
    let (signed, signature) = jwt
        .rsplit_once('.')
        .ok_or_else(|| invalid("expected three dot-separated parts"))?;
    let (header, claims) = signed
        .split_once('.')
        .filter(|(_, claims)| !claims.contains('.'))
        .ok_or_else(|| invalid("expected three dot-separated parts"))?;
    let header: ReceivedHeader = decode_json(header).ok_or_else(|| invalid("bad header"))?;
    if header.alg != "RS256" {
        return Err(invalid("alg is not RS256"));
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| invalid("signature is not base64url"))?;
    UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, public_key_der)
        .verify(signed.as_bytes(), &signature)
        .map_err(|_| invalid("signature does not verify"))?;
    decode_json(claims).ok_or_else(|| invalid("bad claims"))
}

/// The account's public key as a DER `RSAPublicKey` (what token endpoints,
/// and tests, verify assertions with).
pub fn public_key_der(sa: &ServiceAccount) -> Result<Vec<u8>, VertexAuthError> {
    Ok(key_pair(sa)?.public().as_ref().to_vec())
}

/// Loads the account's PKCS#8 PEM key into ring.
pub(crate) fn key_pair(sa: &ServiceAccount) -> Result<RsaKeyPair, VertexAuthError> {
    let der = pem_to_der(&sa.private_key)?;
    RsaKeyPair::from_pkcs8(&der).map_err(|rejected| {
        VertexAuthError::PrivateKey(format!("not an RSA PKCS#8 key ring accepts ({rejected})"))
    })
}

/// Strips the PEM armour and decodes the base64 body. Errors describe the
/// problem, never the key's contents.
fn pem_to_der(pem: &str) -> Result<Vec<u8>, VertexAuthError> {
    let problem = |why: &str| VertexAuthError::PrivateKey(why.to_string());
    // Keys pasted through environment variables often keep `\n` literally.
    let pem = pem.replace("\\n", "\n");
    if pem.contains("-----BEGIN RSA PRIVATE KEY-----") {
        return Err(problem(
            "PKCS#1 key (BEGIN RSA PRIVATE KEY); convert it with `openssl pkcs8 -topk8 -nocrypt`",
        ));
    }
    if pem.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        return Err(problem("encrypted keys are not supported"));
    }
    let Some((_, after_begin)) = pem.split_once(PEM_BEGIN) else {
        return Err(problem(
            "expected a PEM block starting with -----BEGIN PRIVATE KEY-----",
        ));
    };
    let Some((body, _)) = after_begin.split_once(PEM_END) else {
        return Err(problem(
            "the PEM block has no -----END PRIVATE KEY----- line",
        ));
    };
    let body: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    STANDARD
        .decode(body)
        .map_err(|_| problem("the PEM body is not valid base64"))
}

fn encode_json(value: &impl Serialize) -> Result<String, VertexAuthError> {
    let json = serde_json::to_vec(value).map_err(|_| VertexAuthError::Signing)?;
    Ok(URL_SAFE_NO_PAD.encode(json))
}

fn decode_json<T: for<'de> Deserialize<'de>>(part: &str) -> Option<T> {
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = include_str!("../../../tests/fixtures/vertex/service_account.json");

    fn account() -> ServiceAccount {
        ServiceAccount::from_json(FIXTURE).unwrap()
    }

    fn with_key(pem: &str) -> ServiceAccount {
        ServiceAccount {
            private_key: pem.to_string(),
            ..account()
        }
    }

    fn decoded(part: &str) -> serde_json::Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    #[test]
    fn signs_and_verifies_with_the_public_half() {
        let sa = account();
        let jwt = signed_assertion(&sa, 1_700_000_000).unwrap();
        let claims = verify_assertion(&jwt, &public_key_der(&sa).unwrap()).unwrap();
        assert_eq!(
            claims,
            serde_json::json!({
                "iss": "aigate-test@aigate-test.iam.gserviceaccount.com",
                "scope": "https://www.googleapis.com/auth/cloud-platform",
                "aud": "http://127.0.0.1:1/token",
                "iat": 1_700_000_000u64,
                "exp": 1_700_003_600u64,
            })
        );
        let header = decoded(jwt.split('.').next().unwrap());
        assert_eq!(
            header,
            serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": sa.private_key_id})
        );
        assert!(!jwt.contains('='), "base64url without padding");
    }

    #[test]
    fn tampering_fails() {
        let sa = account();
        let public = public_key_der(&sa).unwrap();
        let jwt = signed_assertion(&sa, 1_700_000_000).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();

        let mut claims = decoded(parts[1]);
        claims["iss"] = "someone-else@example.com".into();
        let forged_claims = URL_SAFE_NO_PAD.encode(claims.to_string());
        let forged = format!("{}.{forged_claims}.{}", parts[0], parts[2]);
        assert!(verify_assertion(&forged, &public).is_err());

        let mut signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        signature[10] ^= 1;
        let flipped = format!(
            "{}.{}.{}",
            parts[0],
            parts[1],
            URL_SAFE_NO_PAD.encode(signature)
        );
        assert!(verify_assertion(&flipped, &public).is_err());

        assert!(verify_assertion("a.b", &public).is_err());
        assert!(verify_assertion(&format!("{jwt}.extra"), &public).is_err());
    }

    #[test]
    fn another_key_does_not_verify() {
        let sa = account();
        let jwt = signed_assertion(&sa, 1).unwrap();
        let mut other = public_key_der(&sa).unwrap();
        let last = other.len() - 1;
        other[last] ^= 2; // a different public exponent
        assert!(verify_assertion(&jwt, &other).is_err());
    }

    #[test]
    fn accepts_literal_backslash_n() {
        let pem = account().private_key.replace('\n', "\\n");
        assert!(key_pair(&with_key(&pem)).is_ok());
    }

    #[test]
    fn pem_errors_are_clear() {
        let cases = [
            (
                "MIIEvQIBADANBg",
                "expected a PEM block starting with -----BEGIN PRIVATE KEY-----",
            ),
            (
                "-----BEGIN PRIVATE KEY-----\nMIIE\n",
                "no -----END PRIVATE KEY----- line",
            ),
            (
                "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----",
                "PKCS#1 key",
            ),
            (
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIE\n-----END ENCRYPTED PRIVATE KEY-----",
                "encrypted keys are not supported",
            ),
            (
                "-----BEGIN PRIVATE KEY-----\n!!not base64!!\n-----END PRIVATE KEY-----",
                "not valid base64",
            ),
            (
                "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----",
                "not an RSA PKCS#8 key",
            ),
        ];
        for (pem, expected) in cases {
            let error = signed_assertion(&with_key(pem), 1).unwrap_err().to_string();
            assert!(
                error.starts_with("service account private key: "),
                "{error}"
            );
            assert!(error.contains(expected), "{error}");
        }
    }
}
