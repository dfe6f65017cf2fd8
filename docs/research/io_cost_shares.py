"""Cost shares by sector from NBS's 42-sector input-output tables (2017, 2018, 2020), as
tabulated in docs/research/cost-structure-evidence.md. Reads the tables from the R package
ionet's data files (`china_20XX_42.rda`, GitHub Carol-seven/ionet) with the `rdata` package;
neither is a project dependency. A research aid, not part of the model."""
import rdata, pandas as pd, numpy as np
groups = {
 'Manufacturing (06-23)': [f'{i:02d}' for i in range(6,24)],
 'Construction (27)': ['27'],
 'Wholesale & retail (28)': ['28'],
 'Accommodation & catering (30)': ['30'],
 'Trade+hotels/catering (28,30)': ['28','30'],
 'Transport/storage/post (29)': ['29'],
 'Info/software (31)': ['31'],
 'Leasing & business services (34)': ['34'],
 'Resident/repair/other svcs (38)': ['38'],
 'Market services excl. finance & real estate (29-31,34-38,41)': ['29','30','31','34','35','36','37','38','41'],
 'All services (28-42)': [f'{i}' for i in range(28,43)],
 'Whole economy (01-42)': [f'{i:02d}' for i in range(1,43)],
}
rows = {'TII':'intermediate','VA001':'labour comp','VA002':'net prod taxes','VA003':'depreciation','VA004':'op. surplus','TVA':'value added','TI':'total input'}
out = {}
for y in ['2017','2018','2020']:
    d = rdata.read_rda(f'china_{y}_42.rda')[f'china_{y}_42']
    d = d.set_index('Code')
    sec = [c for c in d.columns if c.isdigit()]
    tab = d.loc[list(rows), sec].astype(float)
    # check identity
    chk = (tab.loc['TII']+tab.loc['TVA']-tab.loc['TI']).abs().max()
    chk2 = (tab.loc[['VA001','VA002','VA003','VA004']].sum()-tab.loc['TVA']).abs().max()
    print(y, 'identity max err', chk, chk2, 'total GO (trn yuan)', tab.loc['TI'].sum()/1e8)
    for g, cols in groups.items():
        s = tab[cols].sum(axis=1)
        out[(y,g)] = {rows[k]: s[k]/s['TI'] for k in rows}
        out[(y,g)]['GO trn'] = s['TI']/1e8
res = pd.DataFrame(out).T
pd.set_option('display.width',250)
print(res.round(3).to_string())
