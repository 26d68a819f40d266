"""A Subsonic client no one here wrote (py-sonic, from PyPI) against a MEFF peer: token auth,
artists, albums, search, a cover, a stream byte-identical to the pushed file, playlists,
stars; then its token sent as a GET query and with an OpenSubsonic API key.

    python subsonic_client.py PORT USER PASSWORD API_KEY PUSHED_FILE
Prints one JSON object of what it saw; any failed check raises (non-zero exit).
"""
import hashlib
import json
import sys
import urllib.request
from urllib.parse import urlencode

import libsonic

port, user, password, api_key, pushed = sys.argv[1:6]
seen = {}

conn = libsonic.Connection("http://127.0.0.1", user, password, port=int(port), appName="meff-test")
assert conn.ping(), "ping"
seen["extensions"] = sorted(
    e["name"] for e in conn._doInfoReq(conn._getRequest("getOpenSubsonicExtensions.view"))["openSubsonicExtensions"])

artists = conn.getArtists()["artists"]["index"]
names = {a["name"]: a for i in artists for a in i["artist"]}
seen["artists"] = sorted(names)
artist = conn.getArtist(names["José Padilla"]["id"])["artist"]
album_id = artist["album"][0]["id"]
album = conn.getAlbum(album_id)["album"]
seen["album"] = album["name"]
seen["album_songs"] = [s["title"] for s in album["song"]]

found = conn.search3("cafe del")["searchResult3"]
seen["search_songs"] = [s["title"] for s in found.get("song", [])]
seen["search_albums"] = [a["name"] for a in found.get("album", [])]
song = [s for s in found["song"] if s["title"] == "Café del Mar"][0]

cover = conn.getCoverArt(album["coverArt"]).read()
small = conn.getCoverArt(album["coverArt"], size=32).read()
seen["cover_bytes"] = len(cover)
seen["cover_magic"] = cover[:4].hex()
seen["small_cover_magic"] = small[:2].hex()

streamed = conn.stream(song["id"]).read()
want = open(pushed, "rb").read()
seen["stream_identical"] = hashlib.sha256(streamed).hexdigest() == hashlib.sha256(want).hexdigest()
seen["stream_bytes"] = len(streamed)
downloaded = conn.download(song["id"]).read()
seen["download_identical"] = downloaded == want

newest = conn.getAlbumList2("newest", size=5)["albumList2"]["album"]
seen["newest"] = [a["name"] for a in newest]
randoms = conn.getRandomSongs(size=3)["randomSongs"]["song"]
seen["random_count"] = len(randoms)
seen["song"] = conn.getSong(song["id"])["song"]["title"]

made = conn.createPlaylist(name="from py-sonic", songIds=[s["id"] for s in album["song"]])
lists = conn.getPlaylists()["playlists"]["playlist"]
pl = [p for p in (lists if isinstance(lists, list) else [lists]) if p["name"] == "from py-sonic"][0]
entries = conn.getPlaylist(pl["id"])["playlist"]["entry"]
seen["playlist_entries"] = len(entries if isinstance(entries, list) else [entries])

conn._doInfoReq(conn._getRequest("star.view", {"id": song["id"]}))
starred = conn.getStarred2()["starred2"]
seen["starred"] = [s["title"] for s in starred.get("song", [])]
conn.scrobble(song["id"])

# The client's own token parameters sent as a GET query instead of a POST form (py-sonic's
# useGET is broken in 1.2.0: it names urllib2).
q = urlencode({**conn._getBaseQdict(), "query": "cafe"})
r = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/rest/search3.view?{q}"))
seen["get_search"] = [s["title"] for s in r["subsonic-response"]["searchResult3"].get("song", [])]

# An OpenSubsonic API key instead of a user and password.
q = urlencode({"apiKey": api_key, "f": "json", "v": "1.16.1", "c": "meff-test"})
r = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/rest/ping.view?{q}"))
seen["api_key_ping"] = r["subsonic-response"]["status"]

print(json.dumps(seen))
