"""`mammodesk pacs search|retrieve|send --server URL ...`: the archive from scripts.
`--server` is a DICOMweb base URL, dimse://CALLED_AE@host:port, or the name of a
server saved in the app. Output has no patient identifiers (a hashed patient
key instead); a failure is one line on stderr and a non-zero exit status."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mammodesk.archive.client import ArchiveError, open_archive, retrieve_study, search
from mammodesk.archive.servers import ServerConfigError, ServerStore, from_url
from mammodesk.io.naming import hashed_key


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="mammodesk pacs", description="Search, retrieve and send DICOM studies.")
    sub = top.add_subparsers(dest="command", required=True)
    for name, text in (("search", "list studies, one line each"), ("retrieve", "download a study's files"),
                       ("send", "store DICOM files (images or reports)")):
        command = sub.add_parser(name, help=text)
        command.add_argument("--server", required=True, help="DICOMweb URL, dimse://AE@host:port, or a saved name")
        command.add_argument("--auth", choices=("none", "basic", "bearer"), default="none",
                             help="the secret comes from MAMMODESK_SECRET_<NAME> or the OS keyring")
        command.add_argument("--user", default="", help="user name for basic authentication")
        command.add_argument("--calling-ae", default="MAMMODESK")
        command.add_argument("--allow-plain-http", action="store_true", help="plain HTTP to another host")
        command.add_argument("--timeout", type=float, default=30.0)
    search = sub.choices["search"]
    search.add_argument("--patient-id", default="")
    search.add_argument("--patient-name", default="")
    search.add_argument("--from", dest="date_from", default="", help="YYYYMMDD")
    search.add_argument("--to", dest="date_to", default="", help="YYYYMMDD")
    search.add_argument("--accession", default="")
    search.add_argument("--modality", default="MG",
                        help="keep studies of this modality and those that list none (anonymised exports "
                             "often drop the tag); '' keeps every study")
    retrieve = sub.choices["retrieve"]
    retrieve.add_argument("study_uid")
    retrieve.add_argument("--out", required=True, type=Path)
    sub.choices["send"].add_argument("files", nargs="+", type=Path)
    return top


def server_from(args):
    if "://" in args.server:
        options = {"auth": args.auth, "username": args.user, "allow_plain_http": args.allow_plain_http,
                   "timeout_s": args.timeout}
        if args.server.startswith("dimse://"):
            options = {"calling_ae": args.calling_ae, "timeout_s": args.timeout}
        return from_url(args.server, **options)
    return ServerStore().find(args.server)


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    try:
        archive = open_archive(server_from(args))
        if args.command == "search":
            found = search(archive, patient_id=args.patient_id, patient_name=args.patient_name,
                           date_from=args.date_from, date_to=args.date_to, accession=args.accession,
                           modality=args.modality)
            for study in found.studies:
                key = hashed_key("patient", study.patient_id) if study.patient_id else "-"
                modalities = "/".join(study.modalities) or "?"
                print(f"{study.study_uid}\t{key}\t{study.date or '-'}\t{study.images}\t{modalities}")
            print(found.describe(), file=sys.stderr)
        elif args.command == "retrieve":
            paths = retrieve_study(archive, args.study_uid, args.out, progress=_progress)
            print(f"\n{len(paths)} file(s) in {args.out}", file=sys.stderr)
        else:
            missing = [str(p) for p in args.files if not p.is_file()]
            if missing:
                raise ArchiveError(f"no such file: {missing[0]}", retry=False)
            stored = archive.store(list(args.files))
            print(f"{len(stored)} object(s) stored", file=sys.stderr)
    except (ArchiveError, ServerConfigError) as exc:
        print(f"mammodesk pacs {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"mammodesk pacs {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


def _progress(done: int, total: int) -> None:
    end = "\r" if sys.stderr.isatty() else "\n"
    print(f"[{done}/{total}]", end=end, file=sys.stderr, flush=True)
