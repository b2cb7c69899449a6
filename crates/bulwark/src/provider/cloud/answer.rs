//! Reading a token endpoint's answer (Entra's, Google's) within a bound:
//! a token answer is a few KiB, and an endpoint that sends more is not a
//! token endpoint; its answer is not held in memory whole.

/// The most read of a token endpoint's answer.
pub(crate) const MAX_TOKEN_ANSWER: usize = 256 * 1024;

/// Why a token endpoint's answer was not read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AnswerError {
    #[error("the answer could not be read")]
    Transport(#[source] reqwest::Error),
    #[error("the answer is larger than {MAX_TOKEN_ANSWER} bytes")]
    TooLarge,
}

/// The whole body of `response`, if it is at most `MAX_TOKEN_ANSWER` bytes.
pub(crate) async fn read_token_answer(
    mut response: reqwest::Response,
) -> Result<Vec<u8>, AnswerError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(AnswerError::Transport)? {
        if body.len() + chunk.len() > MAX_TOKEN_ANSWER {
            return Err(AnswerError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A server on 127.0.0.1 that answers one request with `status` and
/// `body`, for the token sources' tests; its URL.
#[cfg(test)]
pub(crate) async fn answer_once(status: u16, body: Vec<u8>) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/token", listener.local_addr()?);
    tokio::spawn(async move {
        let Ok((mut stream, _)) = listener.accept().await else {
            return;
        };
        // The request is read whole before answering, so that the client
        // is not cut off mid-send.
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let Ok(n) = stream.read(&mut buf).await else {
                return;
            };
            if n == 0 {
                return;
            }
            request.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&request);
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .filter_map(|line| line.split_once(':'))
                    .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, value)| value.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if request.len() >= end + 4 + length {
                    break;
                }
            }
        }
        let head = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        let _ = stream.write_all(head.as_bytes()).await;
        let _ = stream.write_all(&body).await;
        let _ = stream.shutdown().await;
    });
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    async fn read(
        body: Vec<u8>,
    ) -> Result<Result<Vec<u8>, AnswerError>, Box<dyn std::error::Error>> {
        let url = answer_once(200, body).await?;
        let response = reqwest::Client::new().post(url).body("x=1").send().await?;
        Ok(read_token_answer(response).await)
    }

    #[tokio::test]
    async fn an_answer_up_to_the_bound_is_read_whole() -> TestResult {
        let body = vec![b'a'; MAX_TOKEN_ANSWER];
        assert_eq!(read(body.clone()).await??, body);
        assert_eq!(read(b"{}".to_vec()).await??, b"{}");
        Ok(())
    }

    #[tokio::test]
    async fn a_larger_answer_is_not_read() -> TestResult {
        let result = read(vec![b'a'; MAX_TOKEN_ANSWER + 1]).await?;
        assert!(matches!(result, Err(AnswerError::TooLarge)), "{result:?}");
        Ok(())
    }
}
