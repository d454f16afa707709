#!/usr/bin/python3
"""The seed program: envelope encryption with boto3 and AWS KMS, as people
write it today. It runs unchanged against `envelope serve` except for
endpoint_url (taken from KMS_ENDPOINT here; against AWS it would be absent).

A data key comes from KMS generate_data_key; the data is encrypted locally
with AES-CBC under the plaintext data key, which is then dropped; only the
wrapped data key (CiphertextBlob) is kept. To decrypt, KMS decrypt unwraps
the data key and AES-CBC decrypts the data.

Run with Debian's /usr/bin/python3 (python3-boto3, python3-pycryptodome).
"""
import os
import sys

import boto3
from Cryptodome.Cipher import AES
from Cryptodome.Random import get_random_bytes
from Cryptodome.Util.Padding import pad, unpad

KEY_ID = os.environ.get("SEED_KEY_ID", "alias/seed")

kms = boto3.client("kms", endpoint_url=os.environ["KMS_ENDPOINT"])


def encrypt(data):
    resp = kms.generate_data_key(KeyId=KEY_ID, KeySpec="AES_256")
    iv = get_random_bytes(16)
    body = AES.new(resp["Plaintext"], AES.MODE_CBC, iv).encrypt(pad(data, AES.block_size))
    return {"wrapped_key": resp["CiphertextBlob"], "iv": iv, "body": body}


def decrypt(envelope):
    key = kms.decrypt(CiphertextBlob=envelope["wrapped_key"])["Plaintext"]
    return unpad(AES.new(key, AES.MODE_CBC, envelope["iv"]).decrypt(envelope["body"]), AES.block_size)


if __name__ == "__main__":
    data = os.urandom(100000) + "données 🔐".encode()
    envelope = encrypt(data)
    if decrypt(envelope) != data:
        sys.exit("round trip FAILED")
    print("round trip ok: %d bytes, wrapped key %d bytes" % (len(data), len(envelope["wrapped_key"])))
