#!/usr/bin/env python3
"""Writes a CloudTrail corpus laid out as a trail writes it, with known contents.

    scripts/trail_corpus.py OUT [--files 40] [--records 5000] [--ecr-rate 0.01] [--gzip]
                            [--every 5] [--seed 7] [--account 123456789012] [--region eu-west-1]

OUT/AWSLogs/ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/ACCOUNT_CloudTrail_REGION_YYYYMMDDTHHMMZ_ID.json
(.gz with --gzip): each file one `{"Records": [...]}` of about 1.2 KB a record, delivered
--every minutes (5) from 2026-11-01T00:00Z on, holding the records of the minutes before it. Most records are other services' calls and ECR reads (pulls);
about --ecr-rate of them are ECR writes: tag pushes, deletes by tag and by digest, lifecycle
expiries, a repository deleted now and then, and some failed writes (AccessDenied), which
change nothing. OUT/expected.json says what an audit of it must report:

    records        every record written
    ecr_writes     ECR write records, failed ones included
    changes        ECR records that changed a tag (failed ones excluded)
    lines          report lines without a registry (one per tag per change; a delete by
                   digest or of a repository names no tag: one line)
    events         {event id: {"lines": N, "time": T}} for every change
    first, last    the first and last record's time
"""

import argparse
import gzip
import hashlib
import json
import os
import random
from datetime import datetime, timedelta, timezone

START = datetime(2026, 11, 1, 0, 0, tzinfo=timezone.utc)
REPOS = ["shop/api", "shop/web", "billing", "platform/base", "ml/train"]
TAGS = ["prod", "prod.latest", "staging", "latest", "v1.4.2", "v1.5.0", "canary", "beta"]
USERS = ["deploy", "ci", "cleanup", "bob", "alice"]


def digest(rng):
    return "sha256:" + hashlib.sha256(rng.randbytes(16)).hexdigest()


def ident(account, who):
    if who in ("bob", "alice"):
        return {"type": "IAMUser", "principalId": "AIDA" + who.upper() * 3,
                "arn": f"arn:aws:iam::{account}:user/{who}", "accountId": account,
                "accessKeyId": "AKIA" + who.upper() * 4, "userName": who}
    return {"type": "AssumedRole", "principalId": f"AROAEXAMPLE:{who}-session",
            "arn": f"arn:aws:sts::{account}:assumed-role/{who}/{who}-session",
            "accountId": account, "accessKeyId": "ASIAEXAMPLE" + who.upper(),
            "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLE",
                                                 "arn": f"arn:aws:iam::{account}:role/{who}",
                                                 "accountId": account, "userName": who},
                               "attributes": {"creationDate": "2026-11-01T00:00:00Z",
                                              "mfaAuthenticated": "false"}}}


def base(rng, account, region, t, source, name, who):
    return {
        "eventVersion": "1.08", "userIdentity": ident(account, who),
        "eventTime": t.strftime("%Y-%m-%dT%H:%M:%SZ"), "eventSource": source,
        "eventName": name, "awsRegion": region, "sourceIPAddress": "203.0.113.%d" % rng.randrange(256),
        "userAgent": "aws-sdk-go-v2/1.30.3 os/linux lang/go#1.22.5 md/GOOS#linux api/" + name,
        "requestID": "%032x" % rng.getrandbits(128), "eventID": "%08x-%04x-%04x-%04x-%012x" % (
            rng.getrandbits(32), rng.getrandbits(16), rng.getrandbits(16), rng.getrandbits(16),
            rng.getrandbits(48)),
        "readOnly": name.startswith(("Get", "Describe", "List", "BatchGet")),
        "eventType": "AwsApiCall", "managementEvent": True, "recipientAccountId": account,
        "eventCategory": "Management",
        "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                       "clientProvidedHostHeader": source.replace("amazonaws.com", region + ".amazonaws.com")},
    }


def other(rng, account, region, t):
    """A record of another service, or an ECR read (a pull)."""
    kind = rng.randrange(5)
    if kind == 0:
        r = base(rng, account, region, t, "sts.amazonaws.com", "AssumeRole", rng.choice(USERS))
        r["requestParameters"] = {"roleArn": f"arn:aws:iam::{account}:role/app-{rng.randrange(50)}",
                                  "roleSessionName": "session-%d" % rng.randrange(10**6), "durationSeconds": 3600}
        r["responseElements"] = {"credentials": {"accessKeyId": "ASIA%016X" % rng.getrandbits(64),
                                                 "sessionToken": "IQoJb3JpZ2luX2VjE" + "x" * 300,
                                                 "expiration": "Nov 1, 2026, 1:00:00 AM"}}
    elif kind == 1:
        r = base(rng, account, region, t, "ecr.amazonaws.com", rng.choice(["BatchGetImage", "GetDownloadUrlForLayer", "GetAuthorizationToken"]), rng.choice(USERS))
        r["requestParameters"] = {"repositoryName": rng.choice(REPOS), "registryId": account,
                                  "imageIds": [{"imageTag": rng.choice(TAGS)}],
                                  "acceptedMediaTypes": ["application/vnd.oci.image.manifest.v1+json",
                                                         "application/vnd.docker.distribution.manifest.v2+json"]}
        r["responseElements"] = None
        r["resources"] = [{"accountId": account, "type": "AWS::ECR::Repository",
                           "ARN": f"arn:aws:ecr:{region}:{account}:repository/{rng.choice(REPOS)}"}]
    elif kind == 2:
        r = base(rng, account, region, t, "ec2.amazonaws.com", "DescribeInstances", rng.choice(USERS))
        r["requestParameters"] = {"instancesSet": {"items": [{"instanceId": "i-%017x" % rng.getrandbits(68)}]},
                                  "filterSet": {"items": [{"name": "tag:Name", "valueSet": {"items": [{"value": "web-%d" % i} for i in range(6)]}}]}}
        r["responseElements"] = None
    elif kind == 3:
        r = base(rng, account, region, t, "kms.amazonaws.com", "Decrypt", rng.choice(USERS))
        r["requestParameters"] = {"encryptionAlgorithm": "SYMMETRIC_DEFAULT",
                                  "encryptionContext": {"aws:s3:arn": f"arn:aws:s3:::bucket-{rng.randrange(99)}/obj-{rng.getrandbits(40):x}"}}
        r["responseElements"] = None
        r["resources"] = [{"accountId": account, "type": "AWS::KMS::Key",
                           "ARN": f"arn:aws:kms:{region}:{account}:key/{rng.getrandbits(128):032x}"}]
    else:
        r = base(rng, account, region, t, "lambda.amazonaws.com", "GetFunction", rng.choice(USERS))
        r["requestParameters"] = {"functionName": f"arn:aws:lambda:{region}:{account}:function:app-{rng.randrange(40)}"}
        r["responseElements"] = None
        r["additionalEventData"] = {"note": "x" * rng.randrange(200, 500)}
    return r


def ecr_write(rng, account, region, t):
    """An ECR write record and how many report lines it makes (0: it changed nothing)."""
    repo = rng.choice(REPOS)
    roll = rng.random()
    who = rng.choice(USERS)
    if roll < 0.45:
        tag, d = rng.choice(TAGS), digest(rng)
        r = base(rng, account, region, t, "ecr.amazonaws.com", "PutImage", who)
        manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                               "config": {"digest": digest(rng), "size": 1234},
                               "layers": [{"digest": digest(rng), "size": rng.randrange(10**7)} for _ in range(3)]})
        r["requestParameters"] = {"repositoryName": repo, "registryId": account, "imageTag": tag,
                                  "imageManifest": manifest,
                                  "imageManifestMediaType": "application/vnd.oci.image.manifest.v1+json"}
        r["responseElements"] = {"image": {"registryId": account, "repositoryName": repo,
                                           "imageId": {"imageDigest": d, "imageTag": tag},
                                           "imageManifest": manifest,
                                           "imageManifestMediaType": "application/vnd.oci.image.manifest.v1+json"}}
        lines = 1
    elif roll < 0.70:
        tags = rng.sample(TAGS, rng.randrange(1, 3))
        ids = [{"imageTag": tg, "imageDigest": digest(rng)} for tg in tags]
        r = base(rng, account, region, t, "ecr.amazonaws.com", "BatchDeleteImage", who)
        r["requestParameters"] = {"repositoryName": repo, "registryId": account,
                                  "imageIds": [{"imageTag": tg} for tg in tags]}
        r["responseElements"] = {"imageIds": ids, "failures": []}
        lines = len(tags)
    elif roll < 0.80:
        d = digest(rng)
        r = base(rng, account, region, t, "ecr.amazonaws.com", "BatchDeleteImage", who)
        r["requestParameters"] = {"repositoryName": repo, "registryId": account, "imageIds": [{"imageDigest": d}]}
        r["responseElements"] = {"imageIds": [{"imageDigest": d}], "failures": []}
        lines = 1
    elif roll < 0.90:
        images = [{"digest": digest(rng), "tagStatus": "TAGGED", "tagList": rng.sample(TAGS, rng.randrange(1, 3)),
                   "pushedAt": 1.7e12} for _ in range(rng.randrange(1, 4))]
        r = base(rng, account, region, t, "ecr.amazonaws.com", "PolicyExecutionEvent", "cleanup")
        r["userIdentity"] = {"accountId": account, "invokedBy": "AWS Internal"}
        r["eventType"] = "AwsServiceEvent"
        r["requestParameters"] = None
        r["responseElements"] = None
        r["serviceEventDetails"] = {"repositoryName": repo, "lifecycleEventPolicy": {"lifecycleEventRules": [{"rulePriority": 1}]},
                                    "lifecycleEventImageActions": [{"lifecycleEventImage": im, "rulePriority": 1} for im in images]}
        lines = sum(len(im["tagList"]) for im in images)
    elif roll < 0.92:
        r = base(rng, account, region, t, "ecr.amazonaws.com", "DeleteRepository", who)
        r["requestParameters"] = {"repositoryName": repo, "registryId": account, "force": True}
        r["responseElements"] = {"repository": {"repositoryName": repo, "registryId": account}}
        lines = 1
    else:
        r = base(rng, account, region, t, "ecr.amazonaws.com", rng.choice(["PutImage", "BatchDeleteImage"]), who)
        r["errorCode"] = "AccessDenied"
        r["errorMessage"] = "User is not authorized to perform this action"
        r["requestParameters"] = {"repositoryName": repo, "registryId": account, "imageTag": rng.choice(TAGS)}
        r["responseElements"] = None
        lines = 0
    return r, lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--files", type=int, default=40)
    ap.add_argument("--records", type=int, default=5000)
    ap.add_argument("--ecr-rate", type=float, default=0.01)
    ap.add_argument("--gzip", action="store_true")
    ap.add_argument("--every", type=int, default=5, help="minutes between two files")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--account", default="123456789012")
    ap.add_argument("--region", default="eu-west-1")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    expected = {"records": 0, "ecr_writes": 0, "changes": 0, "lines": 0, "events": {}}
    for f in range(a.files):
        delivered = START + timedelta(minutes=a.every * (f + 1))
        day = delivered.strftime("%Y/%m/%d")
        folder = os.path.join(a.out, "AWSLogs", a.account, "CloudTrail", a.region, day)
        os.makedirs(folder, exist_ok=True)
        name = "%s_CloudTrail_%s_%s_%08x.json" % (a.account, a.region, delivered.strftime("%Y%m%dT%H%MZ"), rng.getrandbits(32))
        records = []
        for i in range(a.records):
            t = delivered - timedelta(seconds=300) + timedelta(seconds=300 * i / a.records)
            if rng.random() < a.ecr_rate:
                r, lines = ecr_write(rng, a.account, a.region, t)
                expected["ecr_writes"] += 1
                if lines:
                    expected["changes"] += 1
                    expected["lines"] += lines
                    expected["events"][r["eventID"]] = {"lines": lines, "time": r["eventTime"]}
            else:
                r = other(rng, a.account, a.region, t)
            if f == 0 and i == 0:
                expected["first"] = r["eventTime"]
            expected["last"] = r["eventTime"]
            records.append(r)
        expected["records"] += len(records)
        text = json.dumps({"Records": records}, separators=(",", ":")).encode()
        path = os.path.join(folder, name)
        if a.gzip:
            with gzip.open(path + ".gz", "wb", compresslevel=6) as out:
                out.write(text)
        else:
            with open(path, "wb") as out:
                out.write(text)
    with open(os.path.join(a.out, "expected.json"), "w") as out:
        json.dump(expected, out)
    print(json.dumps({k: v for k, v in expected.items() if k != "events"}))


if __name__ == "__main__":
    main()
