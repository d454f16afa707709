#!/usr/bin/python3
"""Signing, MAC and key agreement keys of `envelope serve` through boto3.

    signing.py debian   Debian's python3-boto3 (botocore 1.29): the specs and
                        operations its service model has (Sign and Verify with
                        RSA, the NIST curves and secp256k1, RAW and DIGEST;
                        GenerateMac and VerifyMac), signatures checked offline
                        with python3-pycryptodome.
    signing.py modern   the pip boto3 (botocore 1.43) for what Debian's lacks:
                        Ed25519 (and Ed25519ph), ML-DSA (RAW and EXTERNAL_MU),
                        DeriveSharedSecret; checked offline with `cryptography`.

Both check the errors AWS gives: InvalidKeyUsageException for a key of another
usage or an algorithm the key does not have, ValidationException for a message
over 4096 bytes, KMSInvalidSignatureException and KMSInvalidMacException.
The endpoint comes from KMS_ENDPOINT. Prints "signing ok" at the end.
"""
import hashlib
import os
import sys

import boto3
import botocore

kms = boto3.client("kms", endpoint_url=os.environ["KMS_ENDPOINT"])
MSG = b"signed by boto3 through envelope serve"


def fails(code, fn, **kw):
    try:
        fn(**kw)
    except botocore.exceptions.ClientError as e:
        got = e.response["Error"]["Code"]
        assert got == code, f"{fn.__name__} {kw.get('SigningAlgorithm', '')}: {got}, want {code}"
        return
    raise AssertionError(f"{fn.__name__}: no error, want {code}")


def key(spec, usage):
    m = kms.create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]
    assert m["KeySpec"] == spec and m["KeyUsage"] == usage, m
    return m


def sign_verify(key_id, alg, message, mtype):
    sig = kms.sign(KeyId=key_id, Message=message, MessageType=mtype, SigningAlgorithm=alg)
    assert sig["SigningAlgorithm"] == alg
    v = kms.verify(KeyId=key_id, Message=message, MessageType=mtype, Signature=sig["Signature"], SigningAlgorithm=alg)
    assert v["SignatureValid"] is True
    bad = bytearray(sig["Signature"])
    bad[-1] ^= 1
    fails("KMSInvalidSignatureException", kms.verify, KeyId=key_id, Message=message, MessageType=mtype,
          Signature=bytes(bad), SigningAlgorithm=alg)
    return sig["Signature"]


def common():
    """What every boto3 has: HMAC keys and the usage errors."""
    for spec, alg, hname in [("HMAC_224", "HMAC_SHA_224", "sha224"), ("HMAC_256", "HMAC_SHA_256", "sha256"),
                             ("HMAC_384", "HMAC_SHA_384", "sha384"), ("HMAC_512", "HMAC_SHA_512", "sha512")]:
        m = key(spec, "GENERATE_VERIFY_MAC")
        assert m["MacAlgorithms"] == [alg], m
        mac = kms.generate_mac(KeyId=m["KeyId"], Message=MSG, MacAlgorithm=alg)["Mac"]
        assert len(mac) == hashlib.new(hname).digest_size
        assert kms.verify_mac(KeyId=m["KeyId"], Message=MSG, Mac=mac, MacAlgorithm=alg)["MacValid"] is True
        fails("KMSInvalidMacException", kms.verify_mac, KeyId=m["KeyId"], Message=MSG + b"!", Mac=mac, MacAlgorithm=alg)
        fails("ValidationException", kms.generate_mac, KeyId=m["KeyId"], Message=b"x" * 4097, MacAlgorithm=alg)
        fails("InvalidKeyUsageException", kms.sign, KeyId=m["KeyId"], Message=MSG, SigningAlgorithm="ECDSA_SHA_256")
    h256 = key("HMAC_256", "GENERATE_VERIFY_MAC")["KeyId"]
    fails("InvalidKeyUsageException", kms.generate_mac, KeyId=h256, Message=MSG, MacAlgorithm="HMAC_SHA_512")
    sym = kms.create_key()["KeyMetadata"]["KeyId"]
    fails("InvalidKeyUsageException", kms.generate_mac, KeyId=sym, Message=MSG, MacAlgorithm="HMAC_SHA_256")
    fails("ValidationException", kms.create_key, KeySpec="ECC_NIST_P256", KeyUsage="ENCRYPT_DECRYPT")
    fails("ValidationException", kms.create_key, KeySpec="ECC_SECG_P256K1", KeyUsage="KEY_AGREEMENT")
    fails("UnsupportedOperationException", kms.create_key, KeySpec="SM2", KeyUsage="SIGN_VERIFY")


def debian():
    from Cryptodome.Hash import SHA256, SHA384, SHA512
    from Cryptodome.PublicKey import ECC, RSA
    from Cryptodome.Signature import DSS, pkcs1_15, pss

    hashes = {"SHA_256": SHA256, "SHA_384": SHA384, "SHA_512": SHA512}
    for spec, algs in [("ECC_NIST_P256", ["ECDSA_SHA_256"]), ("ECC_NIST_P384", ["ECDSA_SHA_384"]),
                       ("ECC_NIST_P521", ["ECDSA_SHA_512"]), ("ECC_SECG_P256K1", ["ECDSA_SHA_256"]),
                       ("RSA_2048", ["RSASSA_PSS_SHA_256", "RSASSA_PSS_SHA_384", "RSASSA_PSS_SHA_512",
                                     "RSASSA_PKCS1_V1_5_SHA_256", "RSASSA_PKCS1_V1_5_SHA_384", "RSASSA_PKCS1_V1_5_SHA_512"])]:
        m = key(spec, "SIGN_VERIFY")
        assert m["SigningAlgorithms"] == algs, m
        pk = kms.get_public_key(KeyId=m["KeyId"])
        assert pk["SigningAlgorithms"] == algs and pk["KeyUsage"] == "SIGN_VERIFY", pk
        for alg in algs:
            h = hashes[alg[-7:]]
            for mtype, message in [("RAW", MSG), ("DIGEST", h.new(MSG).digest())]:
                sig = sign_verify(m["KeyId"], alg, message, mtype)
                if spec == "ECC_SECG_P256K1":
                    continue  # pycryptodome 3.11 has no secp256k1; openssl checks it (kms tests)
                if spec.startswith("ECC"):
                    DSS.new(ECC.import_key(pk["PublicKey"]), "fips-186-3", encoding="der").verify(h.new(MSG), sig)
                elif "PSS" in alg:
                    pss.new(RSA.import_key(pk["PublicKey"])).verify(h.new(MSG), sig)
                else:
                    pkcs1_15.new(RSA.import_key(pk["PublicKey"])).verify(h.new(MSG), sig)
        fails("ValidationException", kms.sign, KeyId=m["KeyId"], Message=b"x" * 4097, SigningAlgorithm=algs[0])
        fails("ValidationException", kms.sign, KeyId=m["KeyId"], Message=b"short", MessageType="DIGEST", SigningAlgorithm=algs[0])
    wrong = key("ECC_NIST_P256", "SIGN_VERIFY")["KeyId"]
    fails("InvalidKeyUsageException", kms.sign, KeyId=wrong, Message=MSG, SigningAlgorithm="ECDSA_SHA_384")
    fails("InvalidKeyUsageException", kms.sign, KeyId=wrong, Message=MSG, SigningAlgorithm="RSASSA_PSS_SHA_256")
    fails("InvalidKeyUsageException", kms.encrypt, KeyId=wrong, Plaintext=MSG)
    common()


def modern():
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    # Ed25519: pure over the message, ph over a SHA-512 digest.
    m = key("ECC_NIST_EDWARDS25519", "SIGN_VERIFY")
    assert m["SigningAlgorithms"] == ["ED25519_SHA_512", "ED25519_PH_SHA_512"], m
    pub = serialization.load_der_public_key(kms.get_public_key(KeyId=m["KeyId"])["PublicKey"])
    assert isinstance(pub, ed25519.Ed25519PublicKey)
    sig = sign_verify(m["KeyId"], "ED25519_SHA_512", MSG, "RAW")
    pub.verify(sig, MSG)
    assert len(sig) == 64
    sign_verify(m["KeyId"], "ED25519_PH_SHA_512", hashlib.sha512(MSG).digest(), "DIGEST")
    fails("ValidationException", kms.sign, KeyId=m["KeyId"], Message=MSG, MessageType="DIGEST", SigningAlgorithm="ED25519_SHA_512")
    fails("ValidationException", kms.sign, KeyId=m["KeyId"], Message=MSG, MessageType="RAW", SigningAlgorithm="ED25519_PH_SHA_512")

    # ML-DSA: RAW and EXTERNAL_MU (μ from the public key, as AWS documents).
    for spec in ["ML_DSA_44", "ML_DSA_65", "ML_DSA_87"]:
        m = key(spec, "SIGN_VERIFY")
        assert m["SigningAlgorithms"] == ["ML_DSA_SHAKE_256"], m
        spki = kms.get_public_key(KeyId=m["KeyId"])["PublicKey"]
        raw_pk = spki[-{"ML_DSA_44": 1312, "ML_DSA_65": 1952, "ML_DSA_87": 2592}[spec]:]
        tr = hashlib.shake_256(raw_pk).digest(64)
        big = MSG * 200
        mu = hashlib.shake_256(tr + b"\x00\x00" + big).digest(64)
        a = sign_verify(m["KeyId"], "ML_DSA_SHAKE_256", MSG, "RAW")
        b = sign_verify(m["KeyId"], "ML_DSA_SHAKE_256", mu, "EXTERNAL_MU")
        assert a and b
        fails("ValidationException", kms.sign, KeyId=m["KeyId"], Message=big, SigningAlgorithm="ML_DSA_SHAKE_256")
        fails("ValidationException", kms.sign, KeyId=m["KeyId"], Message=b"x" * 32, MessageType="DIGEST", SigningAlgorithm="ML_DSA_SHAKE_256")

    # ECDH: the peer (cryptography) and the KMS derive the same raw secret.
    for spec, curve in [("ECC_NIST_P256", ec.SECP256R1()), ("ECC_NIST_P384", ec.SECP384R1()), ("ECC_NIST_P521", ec.SECP521R1())]:
        m = key(spec, "KEY_AGREEMENT")
        assert m["KeyAgreementAlgorithms"] == ["ECDH"], m
        kms_pub = serialization.load_der_public_key(kms.get_public_key(KeyId=m["KeyId"])["PublicKey"])
        peer = ec.generate_private_key(curve)
        peer_der = peer.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        out = kms.derive_shared_secret(KeyId=m["KeyId"], KeyAgreementAlgorithm="ECDH", PublicKey=peer_der)
        assert out["SharedSecret"] == peer.exchange(ec.ECDH(), kms_pub), spec
        assert out["KeyAgreementAlgorithm"] == "ECDH" and out["KeyOrigin"] == "AWS_KMS", out
        other = ec.generate_private_key(ec.SECP256K1()).public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        fails("ValidationException", kms.derive_shared_secret, KeyId=m["KeyId"], KeyAgreementAlgorithm="ECDH", PublicKey=other)
        fails("InvalidKeyUsageException", kms.sign, KeyId=m["KeyId"], Message=MSG, SigningAlgorithm="ECDSA_SHA_256")
    signing = key("ECC_NIST_P256", "SIGN_VERIFY")["KeyId"]
    fails("InvalidKeyUsageException", kms.derive_shared_secret, KeyId=signing, KeyAgreementAlgorithm="ECDH", PublicKey=peer_der)
    # secp256k1 signatures verify with cryptography too.
    m = key("ECC_SECG_P256K1", "SIGN_VERIFY")
    pub = serialization.load_der_public_key(kms.get_public_key(KeyId=m["KeyId"])["PublicKey"])
    assert isinstance(pub.curve, ec.SECP256K1)
    pub.verify(sign_verify(m["KeyId"], "ECDSA_SHA_256", MSG, "RAW"), MSG, ec.ECDSA(hashes.SHA256()))
    common()


{"debian": debian, "modern": modern}[sys.argv[1]]()
print("signing ok", boto3.__version__)
