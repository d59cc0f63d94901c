#!/usr/bin/env python3
"""Fills a Lifeboat repository (local directory, made by `lifeboat repo init`) with N valid chunks
for bench/scale, quickly: it writes the objects of repository-format.md directly instead of
backing up N × 1 MiB of data (which would take hours and half a terabyte).

Every object is what Lifeboat itself would write, from the format spec alone (a second writer):
  - N chunks of 64 random bytes: data/<id[0:2]>/<id>, sealed (§7, uncompressed), id = HMAC (§6);
  - N / 1000 snapshot manifests of 1,000 chunks each (§8), so verify and prune have real manifests;
  - the index (§14): ceil(N / 2^20) index objects naming every chunk.
Small chunks keep the fill fast; a backup's index lookups and a listing's cost depend on the
number of chunks, not their size. Files are written without fsync (a benchmark fixture).
Usage: scale-fill.py REPO N   (LIFEBOAT_PASSWORD holds the passphrase)
"""
import datetime, hashlib, hmac, json, os, sys
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives import hashes

repo, count = sys.argv[1], int(sys.argv[2])
passphrase = os.environ["LIFEBOAT_PASSWORD"].encode()
config = json.load(open(os.path.join(repo, "config")))
key_id = sorted(os.listdir(os.path.join(repo, "keys")))[0]
key = json.load(open(os.path.join(repo, "keys", key_id)))
import base64
salt = base64.b64decode(key["salt"])
s = key["scrypt"]
wrapping = hashlib.scrypt(passphrase, salt=salt, n=s["n"], r=s["r"], p=s["p"], maxmem=1 << 28, dklen=32)
wrapped = base64.b64decode(key["wrapped"])
master = AESGCM(wrapping).decrypt(wrapped[:12], wrapped[12:], ("lifeboat/v1 key " + key_id).encode())

def derive(info):
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=config["id"].encode(), info=info.encode()).derive(master)

data_key = AESGCM(derive("lifeboat/v1/data"))
chunk_key = derive("lifeboat/v1/chunk-id")

def seal(plaintext, binding):
    nonce = os.urandom(12)
    header = bytes([1, 0])
    return header + nonce + data_key.encrypt(nonce, plaintext, ("lifeboat/v1 " + binding).encode() + header)

def write(name, data):
    path = os.path.join(repo, name)
    try:
        f = open(path, "wb")
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        f = open(path, "wb")
    with f:
        f.write(data)

now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
ids = []
batch = []
for i in range(count):
    plaintext = os.urandom(64)
    digest = hmac.new(chunk_key, plaintext, hashlib.sha256).hexdigest()
    write("data/%s/%s" % (digest[:2], digest), seal(plaintext, "chunk " + digest))
    ids.append(bytes.fromhex(digest))
    batch.append((digest, plaintext))
    if len(batch) == 1000 or i == count - 1:
        snapshot = os.urandom(16).hex()
        whole = hashlib.sha256(b"".join(p for _, p in batch)).hexdigest()
        manifest = {"version": 1, "id": snapshot, "store": "fill", "kind": "artefact", "tags": ["scale-fill"],
                    "hostname": "scale-fill", "started": now, "finished": now, "source": {},
                    "size": 64 * len(batch), "sha256": whole, "chunks": [{"id": d, "size": 64} for d, _ in batch]}
        write("snapshots/" + snapshot, seal(json.dumps(manifest, sort_keys=True).encode(), "snapshot " + snapshot))
        batch = []
ids.sort()
for start in range(0, len(ids), 1 << 20):
    part = ids[start:start + (1 << 20)]
    index_id = os.urandom(16).hex()
    plaintext = b"LBIX" + bytes([1, 0, 0, 0]) + len(part).to_bytes(4, "big") + b"".join(part)
    write("index/" + index_id, seal(plaintext, "index " + index_id))
print("%d chunks, %d manifests, %d index objects" % (count, (count + 999) // 1000, (count + (1 << 20) - 1) >> 20))
