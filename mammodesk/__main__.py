from mammodesk.cli import main

raise SystemExit(main())
