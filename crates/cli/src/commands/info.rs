//! `mlaudit info`: the server's log origin, verifier key and size.

use anyhow::Context;
use serde_json::Value;

use crate::http::{check, http, runtime, ServerArgs};

/// `mlaudit info`.
pub fn info(a: ServerArgs) -> anyhow::Result<i32> {
    let rt = runtime()?;
    let v: Value = rt.block_on(async {
        let c = http(a.ca_cert.as_deref())?;
        let resp = a
            .get(&c, "/v1/info")
            .send()
            .await
            .with_context(|| format!("contacting {}", a.url))?;
        anyhow::Ok(check(resp).await?.json().await?)
    })?;
    outln!("origin           {}", v["origin"].as_str().unwrap_or(""));
    outln!("verifier key     {}", v["vkey"].as_str().unwrap_or(""));
    outln!("entries          {}", v["size"]);
    outln!("checkpoint size  {}", v["checkpoint_size"]);
    outln!("version          {}", v["version"].as_str().unwrap_or(""));
    Ok(0)
}
