#!/usr/bin/python3
# Interop: uploads FILE to a MediaServer with tuspy (Debian's python3-tuspy), the way a Python app would.
# The upload is interrupted after its first chunk and resumed by a NEW client and uploader object that
# finds the upload URL in tuspy's URL storage (TinyDB file STORE) and asks the server for the offset (HEAD).
#   tuspy_upload.py URL TOKEN FILE STORE CHUNK_BYTES
# Prints the upload URL on the last line; exits non-zero on any failure.
import sys

from tusclient import client
from tusclient.storage import filestorage


def uploader(url, token, path, store, chunk):
    c = client.TusClient(url, headers={"Authorization": "Bearer " + token})
    return c.uploader(path, chunk_size=chunk, store_url=True, upload_checksum=True,
                      url_storage=filestorage.FileStorage(store),
                      metadata={"filetype": "application/x-test"})


def main():
    url, token, path, store, chunk = sys.argv[1:6]
    chunk = int(chunk)
    first = uploader(url, token, path, store, chunk)
    first.upload_chunk()  # then the "app" dies
    interrupted_at = first.offset
    second = uploader(url, token, path, store, chunk)
    if second.url != first.url:
        sys.exit("the new uploader did not find the stored URL: %s vs %s" % (second.url, first.url))
    if second.offset != interrupted_at:
        sys.exit("the new uploader resumes at %d, not %d" % (second.offset, interrupted_at))
    second.upload()
    if second.offset != second.get_file_size():
        sys.exit("upload stopped at %d" % second.offset)
    print(second.url)


if __name__ == "__main__":
    main()
