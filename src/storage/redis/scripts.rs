//! The Lua scripts, compiled in. Each is `lua/window.lua` (clock and sliding
//! window helpers) followed by its own body; `redis::Script` sends the SHA
//! first and the text only when Redis does not know it yet (after a restart).

use ::redis::Script;

macro_rules! script {
    ($file:literal) => {
        Script::new(concat!(
            include_str!("lua/window.lua"),
            "\n",
            include_str!(concat!("lua/", $file))
        ))
    };
}

pub(crate) struct Scripts {
    pub endpoint_acquire: Script,
    pub ip_check: Script,
    pub ip_record_error: Script,
    pub ip_unban: Script,
    pub ip_list_bans: Script,
    pub user_reserve: Script,
    pub user_charge: Script,
    pub user_usage: Script,
    pub cooldown_set: Script,
    pub cooldown_list: Script,
}

impl Scripts {
    pub fn new() -> Self {
        Scripts {
            endpoint_acquire: script!("endpoint_acquire.lua"),
            ip_check: script!("ip_check.lua"),
            ip_record_error: script!("ip_record_error.lua"),
            ip_unban: script!("ip_unban.lua"),
            ip_list_bans: script!("ip_list_bans.lua"),
            user_reserve: script!("user_reserve.lua"),
            user_charge: script!("user_charge.lua"),
            user_usage: script!("user_usage.lua"),
            cooldown_set: script!("cooldown_set.lua"),
            cooldown_list: script!("cooldown_list.lua"),
        }
    }
}
