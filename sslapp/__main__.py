from sslapp.cli import main

raise SystemExit(main())
