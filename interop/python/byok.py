#!/usr/bin/python3
"""Imported key material (BYOK) of `envelope serve` through boto3, the key
material wrapped with openssl as AWS KMS's developer guide shows.

    byok.py debian DIR  Debian's python3-boto3 (botocore 1.29), whose service
                     model has RSAES_OAEP_SHA_1/256 and RSA_2048 wrapping keys
                     only: a symmetric key's material wrapped with
                     `openssl pkeyutl` (OAEP, SHA-256), use, deletion,
                     re-import, other material refused, and expiry (ValidTo a
                     few seconds ahead, polled with a deadline).
    byok.py modern DIR  the pip boto3 (botocore 1.43): RSA_AES_KEY_WRAP_SHA_256
                     (`openssl enc -id-aes256-wrap-pad` under a one-time AES
                     key, that key wrapped with `openssl pkeyutl`) of an RSA
                     and an ECC private key (PKCS #8 DER from openssl) and an
                     HMAC key; signatures checked with `cryptography`, the
                     MAC computed here; KeyMaterialId and ImportType.

The endpoint comes from KMS_ENDPOINT; the second argument is a scratch
directory.
Prints "byok ok" at the end.
"""
import datetime
import hashlib
import hmac
import os
import subprocess
import sys
import time

import boto3
import botocore

kms = boto3.client("kms", endpoint_url=os.environ["KMS_ENDPOINT"])
DIR = sys.argv[2]


def path(name):
    return os.path.join(DIR, name)


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, cwd=DIR, capture_output=True)


def read(name):
    with open(path(name), "rb") as f:
        return f.read()


def write(name, data):
    with open(path(name), "wb") as f:
        f.write(data)


def fails(code, fn, **kw):
    try:
        fn(**kw)
    except botocore.exceptions.ClientError as e:
        got = e.response["Error"]["Code"]
        assert got == code, f"{fn.__name__}: {got} ({e}), want {code}"
        return e
    raise AssertionError(f"{fn.__name__}: no error, want {code}")


def oaep_wrap(public_key, material_file, out, md="sha256"):
    """AWS's documented command for RSAES_OAEP_SHA_*."""
    write("WrappingPublicKey.bin", public_key)
    openssl("pkeyutl", "-encrypt", "-in", material_file, "-out", out,
            "-inkey", "WrappingPublicKey.bin", "-keyform", "DER", "-pubin",
            "-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:" + md,
            "-pkeyopt", "rsa_mgf1_md:" + md)
    return read(out)


def aes_key_wrap(public_key, material_file, md="sha256"):
    """AWS's documented commands for RSA_AES_KEY_WRAP_SHA_*: the material
    wrapped under a one-time AES-256 key (RFC 5649), that key wrapped with
    RSA-OAEP, the two concatenated."""
    openssl("rand", "-out", "aes-key.bin", "32")
    openssl("enc", "-id-aes256-wrap-pad", "-K", read("aes-key.bin").hex(), "-iv", "A65959A6",
            "-in", material_file, "-out", "key-material-wrapped.bin")
    wrapped_key = oaep_wrap(public_key, "aes-key.bin", "aes-key-wrapped.bin", md)
    return wrapped_key + read("key-material-wrapped.bin")


def params(key_id, alg, spec="RSA_2048"):
    p = kms.get_parameters_for_import(KeyId=key_id, WrappingAlgorithm=alg, WrappingKeySpec=spec)
    assert p["KeyId"].endswith(key_id), p["KeyId"]
    now = datetime.datetime.now(datetime.timezone.utc)
    assert datetime.timedelta(hours=23) < p["ParametersValidTo"] - now <= datetime.timedelta(hours=24, seconds=5), p["ParametersValidTo"]
    return p


def debian():
    k = kms.create_key(Origin="EXTERNAL", Description="byok debian")["KeyMetadata"]
    kid = k["KeyId"]
    assert k["Origin"] == "EXTERNAL" and k["KeyState"] == "PendingImport" and not k["Enabled"], k
    fails("KMSInvalidStateException", kms.encrypt, KeyId=kid, Plaintext=b"x")
    openssl("rand", "-out", "PlaintextKeyMaterial.bin", "32")
    p = params(kid, "RSAES_OAEP_SHA_256")
    enc = oaep_wrap(p["PublicKey"], "PlaintextKeyMaterial.bin", "EncryptedKeyMaterial.bin")
    e = fails("ValidationException", kms.import_key_material, KeyId=kid, ImportToken=p["ImportToken"], EncryptedKeyMaterial=enc)
    assert "A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES" in str(e), e
    kms.import_key_material(KeyId=kid, ImportToken=p["ImportToken"], EncryptedKeyMaterial=enc,
                            ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
    m = kms.describe_key(KeyId=kid)["KeyMetadata"]
    assert m["KeyState"] == "Enabled" and m["ExpirationModel"] == "KEY_MATERIAL_DOES_NOT_EXPIRE" and "ValidTo" not in m, m
    blob = kms.encrypt(KeyId=kid, Plaintext=b"under imported material")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"under imported material"

    kms.delete_imported_key_material(KeyId=kid)
    assert kms.describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "PendingImport"
    fails("KMSInvalidStateException", kms.decrypt, CiphertextBlob=blob)
    # Other material is refused; the token serves again for this key only.
    openssl("rand", "-out", "Other.bin", "32")
    other = oaep_wrap(p["PublicKey"], "Other.bin", "EncryptedOther.bin")
    fails("IncorrectKeyMaterialException", kms.import_key_material, KeyId=kid, ImportToken=p["ImportToken"],
          EncryptedKeyMaterial=other, ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
    k2 = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    fails("InvalidImportTokenException", kms.import_key_material, KeyId=k2, ImportToken=p["ImportToken"],
          EncryptedKeyMaterial=enc, ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
    fails("UnsupportedOperationException", kms.get_parameters_for_import, KeyId=kms.create_key()["KeyMetadata"]["KeyId"],
          WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048")
    fails("UnsupportedOperationException", kms.get_parameters_for_import, KeyId=kid,
          WrappingAlgorithm="RSAES_PKCS1_V1_5", WrappingKeySpec="RSA_2048")

    # The same material again, expiring in 3 seconds (SHA-1 this time).
    p1 = params(kid, "RSAES_OAEP_SHA_1")
    enc1 = oaep_wrap(p1["PublicKey"], "PlaintextKeyMaterial.bin", "EncryptedKeyMaterial1.bin", "sha1")
    valid_to = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=3)
    kms.import_key_material(KeyId=kid, ImportToken=p1["ImportToken"], EncryptedKeyMaterial=enc1,
                            ExpirationModel="KEY_MATERIAL_EXPIRES", ValidTo=valid_to)
    m = kms.describe_key(KeyId=kid)["KeyMetadata"]
    assert m["KeyState"] == "Enabled" and m["ExpirationModel"] == "KEY_MATERIAL_EXPIRES" and abs((m["ValidTo"] - valid_to).total_seconds()) < 1, m
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"under imported material"
    deadline = time.monotonic() + 30
    while True:
        try:
            kms.decrypt(CiphertextBlob=blob)
        except botocore.exceptions.ClientError as e:
            code = e.response["Error"]["Code"]
            assert code == "KMSInvalidStateException" and "is pending import." in str(e), e
            break
        assert time.monotonic() < deadline, "the material did not expire within 30 s of its ValidTo"
        time.sleep(0.2)
    m = kms.describe_key(KeyId=kid)["KeyMetadata"]
    assert m["KeyState"] == "PendingImport" and "ExpirationModel" not in m, m
    kms.import_key_material(KeyId=kid, ImportToken=p["ImportToken"], EncryptedKeyMaterial=enc,
                            ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"under imported material"


def modern():
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding

    msg = b"signed with imported material"
    # RSA (needs RSA_AES_KEY_WRAP) and P-384 private keys from openssl, as
    # PKCS #8 DER (AWS's format for asymmetric material).
    for spec, gen, alg in [
        ("RSA_3072", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072"], "RSASSA_PSS_SHA_256"),
        ("ECC_NIST_P384", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"], "ECDSA_SHA_384"),
    ]:
        openssl("genpkey", *gen, "-out", spec + ".pem")
        openssl("pkcs8", "-topk8", "-nocrypt", "-in", spec + ".pem", "-outform", "DER", "-out", spec + ".der")
        kid = kms.create_key(Origin="EXTERNAL", KeySpec=spec, KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
        if spec.startswith("RSA"):
            fails("UnsupportedOperationException", kms.get_parameters_for_import, KeyId=kid,
                  WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_4096")
        p = params(kid, "RSA_AES_KEY_WRAP_SHA_256", "RSA_3072")
        out = kms.import_key_material(KeyId=kid, ImportToken=p["ImportToken"],
                                      EncryptedKeyMaterial=aes_key_wrap(p["PublicKey"], spec + ".der"),
                                      ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
        assert len(out["KeyMaterialId"]) == 64, out
        local = serialization.load_der_private_key(read(spec + ".der"), None).public_key()
        pub = kms.get_public_key(KeyId=kid)["PublicKey"]
        assert pub == local.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        sig = kms.sign(KeyId=kid, Message=msg, SigningAlgorithm=alg)["Signature"]
        if spec.startswith("RSA"):
            local.verify(sig, msg, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())
        else:
            local.verify(sig, msg, ec.ECDSA(hashes.SHA384()))
        fails("UnsupportedOperationException", kms.import_key_material, KeyId=kid, ImportToken=p["ImportToken"],
              EncryptedKeyMaterial=aes_key_wrap(p["PublicKey"], spec + ".der"),
              ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE", ImportType="NEW_KEY_MATERIAL")

    # HMAC_384: the MAC is HMAC-SHA-384 with the material (SHA-1 wrapping).
    openssl("rand", "-out", "hmac.bin", "48")
    kid = kms.create_key(Origin="EXTERNAL", KeySpec="HMAC_384", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]["KeyId"]
    p = params(kid, "RSA_AES_KEY_WRAP_SHA_1")
    kms.import_key_material(KeyId=kid, ImportToken=p["ImportToken"], EncryptedKeyMaterial=aes_key_wrap(p["PublicKey"], "hmac.bin", "sha1"),
                            ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
    mac = kms.generate_mac(KeyId=kid, Message=msg, MacAlgorithm="HMAC_SHA_384")["Mac"]
    assert mac == hmac.new(read("hmac.bin"), msg, hashlib.sha384).digest()

    # A symmetric key's new material, rotated to on demand.
    kid = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    for n in (1, 2):
        openssl("rand", "-out", f"sym{n}.bin", "32")
        p = params(kid, "RSA_AES_KEY_WRAP_SHA_256")
        kw = {"ImportType": "NEW_KEY_MATERIAL"} if n == 2 else {}
        kms.import_key_material(KeyId=kid, ImportToken=p["ImportToken"], EncryptedKeyMaterial=aes_key_wrap(p["PublicKey"], f"sym{n}.bin"),
                                ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE", KeyMaterialDescription=f"material {n}", **kw)
        if n == 1:
            blob = kms.encrypt(KeyId=kid, Plaintext=b"first")["CiphertextBlob"]
    rot = kms.list_key_rotations(KeyId=kid, IncludeKeyMaterial="ALL_KEY_MATERIAL")["Rotations"]
    assert [r["KeyMaterialState"] for r in rot] == ["CURRENT", "PENDING_ROTATION"], rot
    assert [r["ImportState"] for r in rot] == ["IMPORTED", "IMPORTED"], rot
    kms.rotate_key_on_demand(KeyId=kid)
    assert kms.describe_key(KeyId=kid)["KeyMetadata"]["CurrentKeyMaterialId"] == rot[1]["KeyMaterialId"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"first"
    out = kms.delete_imported_key_material(KeyId=kid, KeyMaterialId=rot[0]["KeyMaterialId"])
    assert out["KeyMaterialId"] == rot[0]["KeyMaterialId"], out
    assert kms.describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "PendingImport"


if __name__ == "__main__":
    mode = sys.argv[1]
    {"debian": debian, "modern": modern}[mode]()
    print("byok ok", botocore.__version__)
