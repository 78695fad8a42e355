//! The route table: every path the server answers, above every door. Each route names the
//! door's handler; the doors themselves never import one another.

use actix_web::middleware::from_fn;
use actix_web::web;

use crate::http::rooms::Holder::{Group, User};
use crate::http::rooms::RoomPart;
use crate::http::{admin, chat, contacts, fastpath, groups, metrics, misc, rooms, system, vcards};
use crate::{apps, ozeki, sites, sse, web as pages, ws, xmpp};

/// Every route of the server.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(home))
        .route("/web/{file}", web::get().to(pages::file))
        .route("/ask/{workgroup}", web::get().to(pages::ask_page))
        .route("/imbachat/v1/{dev_id}/widget", web::get().to(sites::widget::by_path))
        .route("/widget.js", web::get().to(sites::widget::by_query))
        .route("/healthz", web::get().to(misc::health))
        .route("/metrics", web::get().to(metrics::metrics))
        // The admin and chat REST APIs, under ofchat's prefix and the REST API plugin's.
        .service(web::scope("/restapi/v1").configure(rest_v1))
        .service(web::scope("/plugins/restapi/v1").configure(rest_v1))
        // External apps' own API (bearer app tokens).
        .route("/api/v1/register", web::post().to(apps::api::register))
        .route("/api/v1/webhook", web::get().to(apps::api::get_webhook))
        .route("/api/v1/webhook", web::put().to(apps::api::set_webhook))
        .route("/api/v1/webhook", web::delete().to(apps::api::delete_webhook))
        .route("/api/v1/chats", web::get().to(apps::api::chats))
        .route("/api/v1/chats", web::post().to(apps::api::open_chat))
        .route("/api/v1/chats/{chat_id}/messages", web::get().to(apps::api::chat_messages))
        .route("/api/v1/messages", web::post().to(apps::api::send))
        // Ozeki 10 HTTP API users (also on `ozeki.http_api_bind`, see `http_api_routes`).
        .configure(http_api_routes)
        // Live doors.
        .route("/sse/{username}", web::get().to(sse::open))
        .route("/ws", web::get().to(ws::open))
        .route("/xmpp-websocket", web::get().to(xmpp::websocket::open));
}

/// The REST APIs below their prefix (`/restapi/v1` and `/plugins/restapi/v1`).
fn rest_v1(cfg: &mut web::ServiceConfig) {
    cfg.route("/auth/token", web::post().to(misc::issue_token))
        .route("/auth/site-token", web::post().to(sites::api::exchange))
        .route("/sites", web::get().to(sites::admin::list))
        .route("/sites", web::post().to(sites::admin::create))
        .route("/sites/{id}", web::get().to(sites::admin::get))
        .route("/sites/{id}", web::put().to(sites::admin::update))
        .route("/sites/{id}", web::delete().to(sites::admin::delete))
        .route("/sites/{id}/secret", web::post().to(sites::admin::rotate_secret))
        .route("/sites/{id}/users", web::get().to(sites::api::users))
        .route("/users", web::get().to(admin::list_users))
        .route("/users", web::post().to(admin::create_user))
        .route("/users/{username}", web::get().to(admin::get_user))
        .route("/users/{username}", web::put().to(admin::update_user))
        .route("/users/{username}", web::delete().to(admin::delete_user))
        .route("/users/{username}/ozeki/apikeys", web::get().to(ozeki::keys::list))
        .route("/users/{username}/ozeki/apikeys", web::post().to(ozeki::keys::issue))
        .route("/users/{username}/ozeki/apikeys/{station}", web::delete().to(ozeki::keys::revoke))
        .route("/users/{username}/groups", web::get().to(groups::of_user))
        .route("/users/{username}/groups", web::post().to(groups::add_to_groups))
        .route("/users/{username}/groups", web::delete().to(groups::remove_from_groups))
        .route("/users/{username}/groups/{group}", web::post().to(groups::add_to_group))
        .route("/users/{username}/groups/{group}", web::delete().to(groups::remove_from_group))
        .route("/users/{username}/vcard", web::get().to(vcards::get))
        .route("/users/{username}/vcard", web::put().to(vcards::put))
        .route("/users/{username}/vcard", web::delete().to(vcards::delete))
        .route("/avatars/{username}", web::get().to(vcards::avatar))
        .route("/groups", web::get().to(groups::list))
        .route("/groups", web::post().to(groups::create))
        .route("/groups/{name}", web::get().to(groups::get))
        .route("/groups/{name}", web::put().to(groups::update))
        .route("/groups/{name}", web::delete().to(groups::delete))
        .route("/users/{username}/roster", web::get().to(contacts::admin_roster))
        .route("/users/{username}/roster", web::post().to(contacts::admin_add_item))
        .route("/users/{username}/roster/{jid}", web::put().to(contacts::admin_update_item))
        .route("/users/{username}/roster/{jid}", web::delete().to(contacts::admin_remove_item))
        .service(web::scope("/chatrooms").wrap(from_fn(rooms::require_service)).configure(chatrooms))
        .route("/chatservices", web::get().to(rooms::chat_services))
        .route("/chatservices", web::post().to(rooms::create_chat_service))
        .route("/apps", web::get().to(apps::admin::list))
        .route("/apps", web::post().to(apps::admin::create))
        .route("/apps/{id}", web::get().to(apps::admin::get))
        .route("/apps/{id}", web::put().to(apps::admin::update))
        .route("/apps/{id}", web::delete().to(apps::admin::delete))
        .route("/apps/{id}/token", web::post().to(apps::admin::rotate_token))
        .route("/apps/{id}/rooms/{room}", web::post().to(apps::admin::attach_room))
        .route("/apps/{id}/rooms/{room}", web::delete().to(apps::admin::detach_room))
        .route("/apps/{id}/deliveries", web::get().to(apps::admin::deliveries))
        .route("/apps/{id}/deliveries/replay", web::post().to(apps::admin::replay_all))
        .route("/apps/{id}/deliveries/{seq}/replay", web::post().to(apps::admin::replay_one))
        .route("/sessions", web::get().to(admin::list_sessions))
        .route("/lockouts/{username}", web::post().to(admin::lock_out))
        .route("/lockouts/{username}", web::delete().to(admin::unlock))
        .route("/sessions/{username}", web::get().to(admin::user_sessions))
        .route("/sessions/{username}", web::delete().to(admin::kick_user))
        .route("/system/statistics/sessions", web::get().to(admin::session_statistics))
        .route("/system/properties", web::get().to(system::properties))
        .route("/system/properties", web::post().to(system::create_property))
        .route("/system/properties/{key}", web::get().to(system::property))
        .route("/system/properties/{key}", web::put().to(system::update_property))
        .route("/system/properties/{key}", web::delete().to(system::delete_property))
        .route("/system/liveness", web::get().to(|a, s| system::liveness(a, s, "liveness")))
        .route("/system/liveness/deadlock", web::get().to(|a, s| system::liveness(a, s, "deadlock")))
        .route("/system/liveness/properties", web::get().to(system::liveness_properties))
        .route("/system/readiness", web::get().to(|a, s| system::readiness(a, s, "readiness")))
        .route("/system/readiness/server", web::get().to(|a, s| system::readiness(a, s, "server")))
        .route("/system/readiness/cluster", web::get().to(|a, s| system::readiness(a, s, "cluster")))
        .route("/system/readiness/plugins", web::get().to(|a, s| system::readiness(a, s, "plugins")))
        .route("/system/readiness/connections", web::get().to(|a, s| system::readiness(a, s, "connections")))
        .route("/archive/messages/unread/{jid}", web::get().to(admin::unread_count))
        .route("/messages/users", web::post().to(admin::broadcast))
        .route("/workgroups", web::get().to(fastpath::admin_list))
        .route("/workgroups", web::post().to(fastpath::admin_create))
        .route("/workgroups/{name}", web::get().to(fastpath::admin_get))
        .route("/workgroups/{name}", web::put().to(fastpath::admin_update))
        .route("/workgroups/{name}", web::delete().to(fastpath::admin_delete))
        .route("/workgroups/{name}/chats", web::get().to(fastpath::admin_chats))
        .route("/workgroups/{name}/chats/{room}", web::get().to(fastpath::admin_transcript))
        .route("/ask/admin", web::post().to(fastpath::ask_admin_create))
        .route("/ask/admin/{name}", web::post().to(fastpath::ask_admin_members))
        .route("/ask/admin/{name}", web::delete().to(fastpath::ask_admin_delete))
        .route("/ask", web::post().to(fastpath::ask))
        .route("/ask/", web::post().to(fastpath::ask))
        .route("/ask/{userid}", web::get().to(fastpath::visitor_status))
        .route("/ask/{userid}", web::delete().to(fastpath::visitor_leave))
        .route("/ask/{userid}", web::post().to(fastpath::visitor_join))
        .route("/ask/{userid}", web::put().to(fastpath::visitor_say))
        .route("/chat/rooms", web::get().to(rooms::directory))
        .route("/chat/rooms/{room}", web::get().to(|c, s, p| rooms::room_part(c, s, p, RoomPart::Entity)))
        .route("/chat/rooms/{room}/occupants", web::get().to(|c, s, p| rooms::room_part(c, s, p, RoomPart::Occupants)))
        .route(
            "/chat/rooms/{room}/participants",
            web::get().to(|c, s, p| rooms::room_part(c, s, p, RoomPart::Participants)),
        )
        .route("/chat/rooms/{room}/chathistory", web::get().to(|c, s, p| rooms::room_part(c, s, p, RoomPart::History)))
        .route("/chat/{username}/login", web::post().to(chat::login))
        .route("/chat/{streamid}/logoff", web::post().to(chat::logoff))
        .route("/chat/{streamid}/messages/{to:.+}", web::post().to(chat::send_message))
        .route("/chat/{username}/messages", web::get().to(chat::history))
        .route("/chat/{streamid}/chatstate/{state}/{to:.+}", web::post().to(chat::chat_state))
        .route("/chat/{streamid}/users/{name}", web::post().to(chat::set_property))
        .route("/chat/{streamid}/users/{name}", web::delete().to(chat::delete_property))
        .route("/chat/users", web::get().to(chat::search_users))
        .route("/chat/{streamid}/contacts", web::get().to(contacts::list_contacts))
        .route("/chat/{streamid}/contacts", web::post().to(contacts::add_contact))
        .route("/chat/{streamid}/contacts/{jid}", web::put().to(contacts::update_contact))
        .route("/chat/{streamid}/contacts/{jid}", web::delete().to(contacts::remove_contact))
        .route("/chat/{streamid}/rooms/{room}", web::put().to(rooms::join))
        .route("/chat/{streamid}/rooms/{room}", web::delete().to(rooms::leave))
        .route("/chat/{streamid}/rooms/{room}", web::post().to(rooms::post))
        .route("/chat/{streamid}/rooms/{room}/{jid}", web::post().to(rooms::invite))
        .route("/chat/{streamid}/presence", web::post().to(contacts::set_presence))
        .route("/chat/{streamid}/presence/{jid}", web::get().to(contacts::get_presence))
        .route("/chat/{streamid}/blocklist", web::get().to(contacts::get_blocklist))
        .route("/chat/{streamid}/blocklist/{jid}", web::post().to(contacts::block))
        .route("/chat/{streamid}/blocklist/{jid}", web::delete().to(contacts::unblock))
        .route("/chat/{streamid}/xmpp", web::post().to(xmpp::post::post_stanza))
        .route("/chat/{streamid}/assists", web::get().to(fastpath::assists))
        .route("/chat/{streamid}/assists/queues", web::get().to(fastpath::queues))
        .route("/chat/{streamid}/assists/{workgroup}", web::post().to(fastpath::agent_online))
        .route("/chat/{streamid}/assists/{workgroup}", web::delete().to(fastpath::agent_offline))
        .route("/chat/{streamid}/offer/{offerid}", web::post().to(fastpath::accept_offer))
        .route("/chat/{streamid}/offer/{offerid}", web::delete().to(fastpath::reject_offer));
}

/// The admin API's rooms, below `/chatrooms` (a `servicename` is checked first).
fn chatrooms(cfg: &mut web::ServiceConfig) {
    cfg.route("", web::get().to(rooms::admin_list))
        .route("", web::post().to(rooms::admin_create))
        .route("/bulk", web::post().to(rooms::admin_bulk_create))
        .route("/bulk", web::put().to(rooms::admin_bulk_update))
        .route("/bulk", web::delete().to(rooms::admin_bulk_delete))
        .route("/{room}", web::get().to(|a, s, v, p| rooms::admin_part(a, s, v, p, RoomPart::Entity)))
        .route("/{room}", web::put().to(rooms::admin_update))
        .route("/{room}", web::delete().to(rooms::admin_delete))
        .route("/{room}/occupants", web::get().to(|a, s, v, p| rooms::admin_part(a, s, v, p, RoomPart::Occupants)))
        .route(
            "/{room}/participants",
            web::get().to(|a, s, v, p| rooms::admin_part(a, s, v, p, RoomPart::Participants)),
        )
        .route("/{room}/chathistory", web::get().to(|a, s, v, p| rooms::admin_part(a, s, v, p, RoomPart::History)))
        .route("/{room}/invite", web::post().to(rooms::admin_invite))
        .route("/{room}/invite/{jid}", web::post().to(rooms::admin_invite_one))
        .route("/{room}/{list}", web::get().to(rooms::admin_affiliations))
        .route("/{room}/{list}", web::put().to(rooms::admin_replace_affiliations))
        .route("/{room}/{list}/{jid}", web::post().to(|a, s, v, p| rooms::admin_affiliation(a, s, v, p, User, true)))
        .route("/{room}/{list}/{jid}", web::delete().to(|a, s, v, p| rooms::admin_affiliation(a, s, v, p, User, false)))
        .route(
            "/{room}/{list}/group/{group}",
            web::post().to(|a, s, v, p| rooms::admin_affiliation(a, s, v, p, Group, true)),
        )
        .route(
            "/{room}/{list}/group/{group}",
            web::delete().to(|a, s, v, p| rooms::admin_affiliation(a, s, v, p, Group, false)),
        );
}

/// The Ozeki 10 HTTP API: on the main listener, and alone on `ozeki.http_api_bind`.
pub fn http_api_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api", web::get().to(ozeki::http_api::api)).route("/api", web::post().to(ozeki::http_api::api));
}

/// `GET /`: an Ozeki client's call (`/?srv=…`), else the web client.
pub async fn home(
    req: actix_web::HttpRequest,
    payload: web::Payload,
    state: web::Data<crate::state::AppState>,
) -> actix_web::HttpResponse {
    if ozeki::client_api::is_client_call(&req) {
        return ozeki::client_api::call(req, payload, state).await;
    }
    pages::index()
}

/// What no route serves: an Ozeki client's call (`?srv=…&api=…` under any path, with or
/// without `index.php`), else 404.
pub async fn fallback(
    req: actix_web::HttpRequest,
    payload: web::Payload,
    state: web::Data<crate::state::AppState>,
) -> actix_web::HttpResponse {
    if ozeki::client_api::is_client_call(&req) {
        ozeki::client_api::call(req, payload, state).await
    } else {
        crate::http::no_route(req).await
    }
}
