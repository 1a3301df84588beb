"""Starts moto_server (pinned: moto 5.2.5) with its ECR made to answer as AWS does.

moto's ECR differs from ECR in ways the guard depends on (see the project's AWS notes,
section 4). Each patch below restores one AWS behaviour; nothing else is changed.
Usage: python moto_launcher.py -H 127.0.0.1 -p PORT
The server exits when its standard input closes, so it never outlives the tests that
started it.
"""

import copy
import hashlib
import json
import os
import sys
import threading

import moto
import moto.server
from moto.core.exceptions import ServiceException
from moto.ecr import models
from moto.ecr.exceptions import (
    ImageAlreadyExistsException,
    InvalidParameterException,
    RepositoryNotFoundException,
)

EXPECTED_MOTO = "5.2.5"


class ImageTagAlreadyExistsException(ServiceException):
    """AWS: a tag held by another image in an IMMUTABLE repository. moto raises
    ImageAlreadyExistsException instead, which the guard must read as success."""

    code = "ImageTagAlreadyExistsException"


class ImageDigestDoesNotMatchException(ServiceException):
    """AWS: PutImage with an imageDigest that is not the sha256 of the manifest bytes.
    moto stores the given digest unchecked."""

    code = "ImageDigestDoesNotMatchException"


def sha256_digest(manifest):
    return "sha256:" + hashlib.sha256(manifest.encode("utf-8")).hexdigest()


def create_digest(self):
    """AWS: an image's digest is the sha256 of its manifest bytes. moto hashes the layer
    digests, or picks one of 101 random values for an index."""
    self._image_digest = sha256_digest(self.image_manifest)


def put_image(
    self,
    repository_name,
    image_manifest,
    image_tag,
    image_manifest_mediatype=None,
    digest=None,
):
    """AWS PutImage, as far as the guard relies on it:
    - a missing repository is RepositoryNotFoundException (moto: a bare HTTP 500);
    - imageDigest must be the sha256 of the bytes (ImageDigestDoesNotMatchException);
    - the same manifest with a tag it already has is ImageAlreadyExistsException;
    - a tag held by another image moves, and that image stays, untagged (moto deletes an
      image whose last tag moves);
    - in an IMMUTABLE repository such a move is ImageTagAlreadyExistsException.
    """
    repository = self.repositories.get(repository_name)
    if repository is None:
        raise RepositoryNotFoundException(repository_name, self.account_id)
    actual = sha256_digest(image_manifest)
    if digest and digest != actual:
        raise ImageDigestDoesNotMatchException(
            f"The specified image digest {digest} does not match the digest {actual} "
            "calculated for the image manifest."
        )
    try:
        parsed = json.loads(image_manifest)
    except json.JSONDecodeError:
        raise InvalidParameterException("Invalid parameter at 'ImageManifest': invalid JSON")
    media_type = image_manifest_mediatype or parsed.get("mediaType")
    if not media_type:
        raise InvalidParameterException(
            "image manifest mediatype not provided in manifest or parameter"
        )
    existing = next(
        (im for im in repository.images if im.get_image_digest() == actual), None
    )
    if existing is not None and (image_tag is None or image_tag in existing.image_tags):
        raise ImageAlreadyExistsException(
            registry_id=repository.registry_id,
            image_tag=image_tag,
            digest=actual,
            repository_name=repository_name,
        )
    holder = next(
        (
            im
            for im in repository.images
            if image_tag is not None and image_tag in im.image_tags and im is not existing
        ),
        None,
    )
    if holder is not None:
        if repository.is_tag_immutable():
            raise ImageTagAlreadyExistsException(
                f"The image tag '{image_tag}' already exists in the '{repository_name}' "
                "repository and cannot be overwritten because the repository is immutable."
            )
        holder.remove_tag(image_tag)
        if not holder.image_tags:
            holder.image_tag = None
    if existing is not None:
        existing.update_tag(image_tag)
        return existing
    image = models.Image(
        self.account_id, image_tag, image_manifest, repository_name, media_type, actual
    )
    repository.images.append(image)
    return image


ORIGINAL_BATCH_GET_IMAGE = models.ECRBackend.batch_get_image


def batch_get_image(self, repository_name, registry_id=None, image_ids=None):
    """AWS BatchGetImage answers a request by tag with that tag in the image's imageId. moto
    names whichever tag the image got last, so an image with several tags cannot be told
    apart from the answer."""
    response = ORIGINAL_BATCH_GET_IMAGE(self, repository_name, registry_id, image_ids)
    found = list({id(im): im for im in response["images"]}.values())
    images = []
    for image_id in image_ids or []:
        for image in found:
            if "imageTag" in image_id and image_id["imageTag"] in image.image_tags:
                echoed = copy.copy(image)
                echoed.image_tag = image_id["imageTag"]
                images.append(echoed)
            elif "imageDigest" in image_id and image.get_image_digest() == image_id["imageDigest"]:
                images.append(image)
    response["images"] = images
    return response


def exit_when_stdin_closes():
    sys.stdin.read()
    os._exit(0)


def main():
    if moto.__version__ != EXPECTED_MOTO:
        sys.exit(
            f"moto {EXPECTED_MOTO} expected (the patches name its internals), "
            f"found {moto.__version__}"
        )
    models.Image._create_digest = create_digest
    models.ECRBackend.put_image = put_image
    models.ECRBackend.batch_get_image = batch_get_image
    threading.Thread(target=exit_when_stdin_closes, daemon=True).start()
    moto.server.main(sys.argv[1:])


if __name__ == "__main__":
    main()
