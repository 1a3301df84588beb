"""Times the release binary handling one protected-tag delete against moto_server.

Each run deletes the tag again, writes a fresh event (new eventID) and runs
`ecr-tag-guard replay --aws EVENT` as a new process, as a cold Lambda would. Wall time and
peak RSS are taken by examples/measure.rs around the process (a small parent, so the bench's
own memory is not counted); AWS calls are counted from moto's request log. Moto's own
latency is part of the time; AWS's differs.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import boto3

from moto_server import ROOT, moto, sha

BIN = os.path.join(ROOT, "target", "release", "ecr-tag-guard")
MEASURE = os.path.join(ROOT, "target", "release", "examples", "measure")
ACCOUNT, REGION = "123456789012", "eu-west-1"


def main(runs):
    log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)
    with moto(stderr=log) as port:
        url = f"http://127.0.0.1:{port}"
        env = dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                   AWS_REGION=REGION, AWS_ENDPOINT_URL=url, AWS_EC2_METADATA_DISABLED="true")
        kw = dict(endpoint_url=url, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
        ecr, ddb, sns = boto3.client("ecr", **kw), boto3.client("dynamodb", **kw), boto3.client("sns", **kw)
        kms = boto3.client("kms", **kw)
        manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                               "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1, "digest": sha("c")},
                               "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 1, "digest": sha("l")}]}, indent=3)
        ecr.create_repository(repositoryName="web")
        for tag in ("prod", "keep"):
            ecr.put_image(repositoryName="web", imageManifest=manifest, imageTag=tag)
        ddb.create_table(TableName="tag-guard", BillingMode="PAY_PER_REQUEST",
                         AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("repository", "tag")],
                         KeySchema=[{"AttributeName": "repository", "KeyType": "HASH"}, {"AttributeName": "tag", "KeyType": "RANGE"}])
        topic = sns.create_topic(Name="pages")["TopicArn"]
        # The pin key, as the template creates it; `protect` pins and seals `prod`.
        key = kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]["Arn"]
        env.update(TAG_GUARD_TABLE="tag-guard", TAG_GUARD_TOPIC_ARN=topic, TAG_GUARD_PIN_KEY=key)
        subprocess.run([BIN, "protect", f"{ACCOUNT}/{REGION}/web:prod"], env=env, check=True, capture_output=True)
        times, rss, calls = [], [], []
        event_path = os.path.join(tempfile.mkdtemp(), "event.json")
        for i in range(runs):
            ecr.batch_delete_image(repositoryName="web", imageIds=[{"imageTag": "prod"}])
            record = {"eventVersion": "1.08", "eventSource": "ecr.amazonaws.com", "eventName": "BatchDeleteImage",
                      "awsRegion": REGION, "eventID": f"bench-{os.getpid()}-{i}", "recipientAccountId": ACCOUNT,
                      "userIdentity": {"type": "IAMUser", "arn": f"arn:aws:iam::{ACCOUNT}:user/bench"},
                      "requestParameters": {"registryId": ACCOUNT, "repositoryName": "web", "imageIds": [{"imageTag": "prod"}]},
                      "responseElements": {"imageIds": [{"imageTag": "prod", "imageDigest": sha(manifest)}], "failures": []}}
            with open(event_path, "w") as f:
                json.dump({"version": "0", "id": f"b{i}", "detail-type": "AWS API Call via CloudTrail", "source": "aws.ecr",
                           "account": ACCOUNT, "region": REGION, "detail": record}, f)
            log.flush()
            before = request_count(log.name)
            wrap = os.environ.get("BENCH_WRAP", "").split()
            run = subprocess.run([MEASURE] + wrap + [BIN, "replay", "--aws", event_path], env=env, capture_output=True, text=True)
            m = json.loads(run.stdout or "{}")
            if m.get("status") != 0 or "restored" not in m.get("stdout", ""):
                sys.exit(f"run {i} failed:\n{run.stdout}\n{run.stderr}")
            times.append(m["wall_ms"])
            rss.append(m["max_rss_kb"] / 1024)
            time.sleep(0.05)
            calls.append(request_count(log.name) - before)
        print(f"ecr-tag-guard bench: BatchDeleteImage of a protected tag, {runs} runs, release binary vs moto_server")
        print(f"{'measure':<34}{'median':>10}{'p90':>10}{'max':>10}  target")
        row = lambda name, v, target: print(f"{name:<34}{statistics.median(v):>10.1f}{pct(v, 0.9):>10.1f}{max(v):>10.1f}  {target}")
        row("whole process, exec to handled (ms)", times, "< 50")
        row("peak RSS (MiB)", rss, "< 15")
        row("AWS calls per event", calls, "10 (5 round trips)")
        print(f"binary size: {os.path.getsize(BIN) / 1e6:.1f} MB")


def request_count(path):
    with open(path) as f:
        return sum(1 for line in f if '"POST ' in line or '"GET ' in line)


def pct(v, p):
    s = sorted(v)
    return s[min(len(s) - 1, int(round(p * (len(s) - 1))))]


if __name__ == "__main__":
    main(int(sys.argv[1]))
