"""An independent implementation of Verity's device reading format (PROTOCOL.md section 2),
written only with pycose, cbor2 and cryptography, to prove the format against the standards
rather than against Verity's own code.

Commands:
  check VECTORS.json          classify every vector and compare with its expected outcome
  make ALG SECRET_HEX DEVICE SEQ TIME NAME VALUE
                              print the hex of a reading signed the way a third-party device would
"""

import hashlib
import io
import json
import sys

import cbor2
from cryptography.hazmat.primitives.asymmetric import ec
from pycose.algorithms import EdDSA, Es256
from pycose.headers import KID, Algorithm, ContentType
from pycose.keys import EC2Key, OKPKey
from pycose.keys.curves import P256, Ed25519
from pycose.messages import CoseMessage, Sign1Message

SEQ = -65537
SENML_CBOR = 112
SENML_LABELS = {-2, -3, -4, -5, 0, 1, 2, 3, 4, 5, 6, 7, 8}
VALUE_LABELS = {2, 3, 4, 8}


def private_key(alg, secret):
    if alg == "ed25519":
        return OKPKey(crv=Ed25519, d=secret)
    return EC2Key(crv=P256, d=secret)


def public_key(alg, public):
    if alg == "ed25519":
        return OKPKey(crv=Ed25519, x=public)
    point = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), public)
    numbers = point.public_numbers()
    return EC2Key(crv=P256, x=numbers.x.to_bytes(32, "big"), y=numbers.y.to_bytes(32, "big"))


def make(alg, secret_hex, device, seq, time, name, value):
    """A reading as a device built with pycose sends it."""
    pack = [{0: name, 6: time, 2: value}]
    msg = Sign1Message(
        phdr={
            Algorithm: EdDSA if alg == "ed25519" else Es256,
            ContentType: SENML_CBOR,
            KID: device.encode(),
            SEQ: seq,
        },
        uhdr={},
        payload=cbor2.dumps(pack),
    )
    msg.key = private_key(alg, bytes.fromhex(secret_hex))
    return msg.encode(tag=True)


def loads_exact(data):
    """Decodes one CBOR item that must fill `data` exactly."""
    stream = io.BytesIO(data)
    item = cbor2.CBORDecoder(stream).decode()
    if stream.tell() != len(data):
        raise ValueError("trailing bytes")
    return item


def classify(vector):
    """The first failing check's code, or 'accepted', found independently."""
    data = bytes.fromhex(vector["reading"])
    try:
        item = loads_exact(data)
    except Exception:
        return "malformed"
    if not isinstance(item, cbor2.CBORTag) or item.tag != 18:
        return "malformed"
    if not isinstance(item.value, (list, tuple)) or len(item.value) != 4:
        return "malformed"
    protected, unprotected, payload, _signature = item.value
    if not isinstance(protected, bytes):
        return "malformed"
    try:
        header = cbor2.loads(protected)
    except Exception:
        return "malformed"
    expected_labels = {1, 3, 4, SEQ}
    if not isinstance(header, dict) or set(header) != expected_labels:
        return "bad_header"
    if header[1] not in (-8, -7) or header[3] != SENML_CBOR or type(header[3]) is not int:
        return "bad_header"
    if not isinstance(header[4], bytes) or not isinstance(header[SEQ], int):
        return "bad_header"
    if not 1 <= header[SEQ] < 2**53 or unprotected != {}:
        return "bad_header"
    if header[4].decode() != vector["device_id"]:
        return "bad_header"
    try:
        pack = cbor2.loads(payload)
    except Exception:
        return "malformed"
    if not isinstance(pack, (list, tuple)) or not 1 <= len(pack) <= 256:
        return "bad_senml"
    base_name, base_time = "", 0
    for record in pack:
        if not isinstance(record, dict) or not set(record) <= SENML_LABELS:
            return "bad_senml"
        base_name = record.get(-2, base_name)
        base_time = record.get(-3, base_time)
        name = base_name + record.get(0, "")
        time = base_time + record.get(6, 0)
        if not name or time == 0 or len(VALUE_LABELS & set(record)) != 1:
            return "bad_senml"
    msg = CoseMessage.decode(data)
    alg = "ed25519" if header[1] == -8 else "p256"
    if alg != vector["alg"]:
        return "wrong_algorithm"
    msg.key = public_key(alg, bytes.fromhex(vector["public_key"]))
    try:
        ok = msg.verify_signature()
    except Exception:
        ok = False
    return "accepted" if ok else "bad_signature"


def check(path):
    vectors = json.load(open(path))
    failures, skipped = 0, 0
    for v in vectors:
        data = bytes.fromhex(v["reading"])
        if hashlib.sha256(data).hexdigest() != v["reading_id"]:
            print(f"FAIL {v['name']}: reading id")
            failures += 1
            continue
        if "indefinite" in v["note"]:
            # cbor2 decodes indefinite lengths transparently; nothing independent to say.
            skipped += 1
            continue
        got = classify(v)
        if got != v["expected"]:
            print(f"FAIL {v['name']}: expected {v['expected']}, independent check says {got}")
            failures += 1
    print(f"{len(vectors)} vectors, {failures} failed, {skipped} not classifiable here")
    return 1 if failures else 0


def main(argv):
    if len(argv) >= 2 and argv[1] == "check":
        return check(argv[2])
    if len(argv) == 9 and argv[1] == "make":
        _, _, alg, secret, device, seq, time, name, value = argv
        print(make(alg, secret, device, int(seq), int(time), name, float(value)).hex())
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
