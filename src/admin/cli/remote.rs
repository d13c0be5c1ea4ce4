//! `aigate users` against a running server: the same operations through the
//! admin API, with the admin key in a header.

use std::net::SocketAddr;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::output::{created, listed, rotated, toggled, ApiUser, ApiUserList};
use super::{Op, UsersCliError};

/// Where a local client reaches a server listening on `listen`.
pub fn base_url(listen: SocketAddr) -> String {
    let mut addr = listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => [127, 0, 0, 1].into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    format!("http://{addr}")
}

/// Path segments are ids we print ourselves, but an operator may paste anything.
pub fn segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[derive(Deserialize)]
struct ApiError {
    error: ApiErrorDetail,
}

#[derive(Deserialize)]
struct ApiErrorDetail {
    message: String,
}

pub struct Remote {
    base: String,
    authorization: String,
}

impl Remote {
    pub fn new(base: &str, admin_key: &str) -> Self {
        Remote {
            base: base.trim_end_matches('/').to_string(),
            authorization: format!("Bearer {admin_key}"),
        }
    }

    /// Sends the operation and prints the answer like the offline path.
    pub fn run(self, op: Op) -> Result<String, UsersCliError> {
        actix_web::rt::System::new().block_on(async move {
            let client = awc::Client::builder()
                .timeout(Duration::from_secs(30))
                .finish();
            let url = |path: &str| format!("{}/admin/api/users{path}", self.base);
            let auth = ("authorization", self.authorization.clone());
            match op {
                Op::Add(body) => {
                    let sent = client.post(url("")).insert_header(auth).send_json(&body);
                    let user: ApiUser = reply(sent.await).await?;
                    let key = user.key.clone();
                    Ok(created(&user, &key))
                }
                Op::List => {
                    let sent = client.get(url("")).insert_header(auth).send();
                    let list: ApiUserList = reply(sent.await).await?;
                    Ok(listed(&list.data))
                }
                Op::SetEnabled(id, enabled) => {
                    let action = if enabled { "enable" } else { "disable" };
                    let path = format!("/{}/{action}", segment(&id));
                    let sent = client.post(url(&path)).insert_header(auth).send();
                    let user: ApiUser = reply(sent.await).await?;
                    Ok(toggled(&user))
                }
                Op::Rotate(id) => {
                    let path = format!("/{}/rotate", segment(&id));
                    let sent = client.post(url(&path)).insert_header(auth).send();
                    let user: ApiUser = reply(sent.await).await?;
                    let key = user.key.clone();
                    Ok(rotated(&user, &key))
                }
            }
        })
    }
}

/// The typed body of a 2xx answer, or the API's error message.
async fn reply<T, S>(
    sent: Result<awc::ClientResponse<S>, awc::error::SendRequestError>,
) -> Result<T, UsersCliError>
where
    T: DeserializeOwned,
    S: futures_util::Stream<Item = Result<bytes::Bytes, awc::error::PayloadError>> + Unpin,
{
    let unreachable = |e: String| UsersCliError::Api(format!("the admin API did not answer: {e}"));
    let mut response = sent.map_err(|e| unreachable(e.to_string()))?;
    let status = response.status();
    let body = response
        .body()
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    if status.is_success() {
        return serde_json::from_slice(&body)
            .map_err(|e| UsersCliError::Api(format!("unexpected answer from the admin API: {e}")));
    }
    let message = serde_json::from_slice::<ApiError>(&body)
        .map(|e| e.error.message)
        .unwrap_or_else(|_| String::from_utf8_lossy(&body).into_owned());
    Err(UsersCliError::Api(format!(
        "the admin API answered {}: {message}",
        status.as_u16()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            base_url("0.0.0.0:6543".parse().unwrap()),
            "http://127.0.0.1:6543"
        );
        assert_eq!(base_url("[::]:80".parse().unwrap()), "http://[::1]:80");
        assert_eq!(segment("u-1 /x"), "u-1%20%2Fx");
    }
}
