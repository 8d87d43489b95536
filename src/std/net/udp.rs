//! UDP: a bound socket that sends datagrams and receives them with their sender.
use super::address::{Policy, check, validate_host, validate_port};
use super::tcp::{net_err, with_timeout};
use crate::runtime::error::BioxenError;
use mlua::{MultiValue, Result as LuaResult, UserData, UserDataMethods, Value};
use tokio::net::UdpSocket;

pub struct Udp {
    socket: UdpSocket,
    policy: Policy,
    local: String,
    port: u16,
}

fn join(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

impl Udp {
    pub async fn bind(policy: Policy, host: String, port: u16) -> LuaResult<Udp> {
        check(&policy, &host, port, "binding UDP on")?;
        let addrs = super::address::resolve(&host, port)
            .await
            .map_err(|e| net_err(format!("cannot resolve {}: {e}", join(&host, port))))?;
        let socket = UdpSocket::bind(&addrs[..]).await.map_err(|e| {
            BioxenError::new(
                "Networking",
                format!("cannot bind UDP on {}: {e}", join(&host, port)),
            )
            .into_lua_err()
        })?;
        let local = socket.local_addr().map_err(|e| net_err(e.to_string()))?;
        Ok(Udp {
            socket,
            policy,
            local: local.to_string(),
            port: local.port(),
        })
    }
}

impl UserData for Udp {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_async_method(
            "send",
            |_, this, (data, host, port): (mlua::LuaString, String, Value)| async move {
                let host = validate_host(&host)?;
                let port = validate_port(&port, false)?;
                check(&this.policy, &host, port, "sending UDP to")?;
                let data = data.as_bytes().to_vec();
                let to = super::address::resolve(&host, port)
                    .await
                    .ok()
                    .and_then(|a| a.into_iter().next())
                    .ok_or_else(|| net_err(format!("cannot resolve {}", join(&host, port))))?;
                let n = this.socket.send_to(&data, to).await.map_err(|e| {
                    net_err(format!("cannot send UDP to {}: {e}", join(&host, port)))
                })?;
                Ok(n)
            },
        );
        m.add_async_method("recv", |lua, this, timeout: Option<f64>| async move {
            let mut buf = vec![0u8; 65536];
            let (n, from) = with_timeout(timeout, "UDP recv", async {
                this.socket
                    .recv_from(&mut buf)
                    .await
                    .map_err(|e| net_err(format!("UDP receive on {}: {e}", this.local)))
            })
            .await?;
            Ok(MultiValue::from_vec(vec![
                Value::String(lua.create_string(&buf[..n])?),
                Value::String(lua.create_string(from.ip().to_string())?),
                Value::Integer(from.port() as i64),
            ]))
        });
        m.add_method("port", |_, this, ()| Ok(this.port));
        m.add_method("address", |_, this, ()| Ok(this.local.clone()));
        m.add_meta_method("__tostring", |_, this, ()| {
            Ok(format!("udp socket {}", this.local))
        });
    }
}
