export declare function runEntry(binUrl: string): Promise<unknown>
export declare function bundleIsFresh(pkg: URL): boolean
