"""The WeChat official-account (公众号) channel: protocol, message handling, state and the /wechat endpoint."""
