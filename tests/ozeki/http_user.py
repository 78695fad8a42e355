"""Drives Switchboard's /api with the vendor's own client, ozekilibsrest (unmodified).

Usage: http_user.py API_URL USERNAME PASSWORD FIRST_RECIPIENT SECOND_RECIPIENT

Prints one JSON line per step; waits for a line on stdin ("go") before downloading, so
that the test can have the recipients answer first.
"""

import json
import sys

from ozekilibsrest import Configuration, Folder, Message, MessageApi


def say(event, **fields):
    print(json.dumps({"event": event, **fields}), flush=True)


def receive(api, config, folder):
    """A download without the delete that download_incoming() adds, with the client's own calls."""
    auth = api.create_authorization_header(config.username, config.password)
    url = api.create_uri_to_receive_sms(config.api_url, folder)
    return api.get_response_receive(api.do_request_get(url, auth)).messages


def shown(messages):
    return [{"id": str(m.message_id), "from": m.from_address, "to": m.to_address, "text": m.text} for m in messages]


def main():
    api_url, username, password, first, second = sys.argv[1:6]
    config = Configuration(username=username, password=password, api_url=api_url)
    api = MessageApi(config)

    one = api.send(Message(to_address=first, text="Hello from the vendor's client"))
    say("sent_one", status=one.status, reason=one.response_message, id=str(one.message.message_id))

    batch = api.send([
        Message(to_address=second, text="Second recipient, same batch"),
        Message(to_address="nobody@localhost", text="To nobody"),
    ])
    say(
        "sent_batch",
        total=batch.total_count,
        success=batch.success_count,
        failed=batch.failed_count,
        results=[{"status": r.status, "reason": r.response_message, "to": r.message.to_address} for r in batch.results],
    )

    sys.stdin.readline()  # the recipients have answered

    inbox = receive(api, config, Folder.Inbox)
    say("inbox", messages=shown(inbox))

    first_reply = [m for m in inbox if m.text.startswith("Reply one")]
    say("marked", ok=api.mark(Folder.Inbox, first_reply[0]) if first_reply else False)
    say("inbox_after_mark", messages=shown(receive(api, config, Folder.Inbox)))

    downloaded = api.download_incoming()
    say("downloaded", messages=shown(downloaded.messages))
    say("inbox_after_download", messages=shown(receive(api, config, Folder.Inbox)))

    deleted = receive(api, config, Folder.Deleted)
    say("deleted_folder", messages=shown(deleted))
    result = api.delete(Folder.Deleted, deleted)
    say("purged", ok=result if isinstance(result, bool) else result.success_count == len(deleted))
    say("deleted_after_purge", messages=shown(receive(api, config, Folder.Deleted)))

    say("sent_folder", messages=shown(receive(api, config, Folder.Sent)))
    say("notsent_folder", messages=shown(receive(api, config, Folder.NotSent)))
    say("done")


if __name__ == "__main__":
    try:
        main()
    except Exception as error:  # reported to the test, which fails with it
        say("failed", error=repr(error))
        sys.exit(1)
